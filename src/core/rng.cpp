#include "core/rng.h"

#include "core/normal_kernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace igan {

namespace {
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // Philox's key schedule
}  // namespace

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
    constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = uint64_t(kMul0) * ctr[0];
        const uint64_t p1 = uint64_t(kMul1) * ctr[2];
        ctr = {uint32_t(p1 >> 32) ^ ctr[1] ^ key[0], uint32_t(p1), uint32_t(p0 >> 32) ^ ctr[3] ^ key[1],
               uint32_t(p0)};
        key[0] += kWeyl0;
        key[1] += kWeyl1;
    }
    return ctr;
}

uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

std::array<uint32_t, 2> stream_key(uint64_t seed, uint64_t stream, uint64_t block) {
    const uint64_t k = splitmix64(seed ^ splitmix64((stream << 24) + block));
    return {uint32_t(k), uint32_t(k >> 32)};
}

std::array<double, 4> uniforms(uint64_t seed, uint64_t stream, int64_t a, int64_t b, uint64_t k) {
    const auto ua = uint64_t(a), ub = uint64_t(b);
    const auto bits = philox4x32({uint32_t(ub), uint32_t(ub >> 32), uint32_t(ua), uint32_t(ua >> 32)},
                                 stream_key(seed, stream, k));
    constexpr double kInv32 = 1.0 / 4294967296.0;
    return {bits[0] * kInv32, bits[1] * kInv32, bits[2] * kInv32, bits[3] * kInv32};
}

namespace {

// Box-Muller on two 32-bit uniforms; u1 is kept inside (0, 1] so the log is finite. The sine
// half is skipped when its normal is not wanted (single-channel noise fields use one of four).
inline void box_muller(uint32_t a, uint32_t b, float* z0, float* z1) {
    constexpr double kInv32 = 1.0 / 4294967296.0;
    const double u1 = (double(a) + 0.5) * kInv32;
    const double u2 = double(b) * kInv32;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 6.283185307179586 * u2;
    *z0 = float(r * std::cos(theta));
    if (z1) *z1 = float(r * std::sin(theta));
}

void normal_row_scalar(const detail::NormalRow& row) {
    const std::array<uint32_t, 2> key = {row.round_keys[0][0], row.round_keys[0][1]};
    for (int64_t c = 0; c < row.cols; ++c) {
        int64_t ix = row.ix0 + c;
        if (row.period_x > 0) ix = detail::wrap(ix, row.period_x);
        const uint64_t ux = uint64_t(ix);
        const auto bits = philox4x32(
            {uint32_t(ux), uint32_t(ux >> 32), uint32_t(row.iy), uint32_t(row.iy >> 32)}, key);
        float z[4];
        box_muller(bits[0], bits[1], &z[0], row.used > 1 ? &z[1] : nullptr);
        if (row.used > 2) box_muller(bits[2], bits[3], &z[2], row.used > 3 ? &z[3] : nullptr);
        for (int j = 0; j < row.used; ++j) row.out[j][c] = z[j];
    }
}

void fill_field(bool vector_kernel, float* out, uint64_t seed, uint64_t stream, int64_t channels,
                int64_t iy0, int64_t ix0, int64_t rows, int64_t cols, int64_t period_x) {
    const int64_t groups = (channels + 3) / 4;
    const int64_t plane = rows * cols;
    at::parallel_for(0, rows * groups, 1, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
            const int64_t r = task / groups, g = task % groups;
            detail::NormalRow row{};
            row.used = int(std::min<int64_t>(4, channels - 4 * g));
            for (int j = 0; j < row.used; ++j) row.out[j] = out + (4 * g + j) * plane + r * cols;
            row.iy = uint64_t(iy0 + r);
            row.ix0 = ix0;
            row.cols = cols;
            row.period_x = period_x;
            auto key = stream_key(seed, stream, uint64_t(g));
            for (auto& round_key : row.round_keys) {
                round_key[0] = key[0];
                round_key[1] = key[1];
                key[0] += kWeyl0;
                key[1] += kWeyl1;
            }
#if IGAN_NORMAL_AVX2
            if (vector_kernel) {
                detail::normal_row_avx2(row);
                continue;
            }
#endif
            normal_row_scalar(row);
        }
    });
}

}  // namespace

bool normal_field_is_vectorised() {
#if IGAN_NORMAL_AVX2
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return yes;
#else
    return false;
#endif
}

void fill_normal_field(float* out, uint64_t seed, uint64_t stream, int64_t channels, int64_t iy0,
                       int64_t ix0, int64_t rows, int64_t cols, int64_t period_x) {
    fill_field(normal_field_is_vectorised(), out, seed, stream, channels, iy0, ix0, rows, cols, period_x);
}

void fill_normal_field_scalar(float* out, uint64_t seed, uint64_t stream, int64_t channels,
                              int64_t iy0, int64_t ix0, int64_t rows, int64_t cols,
                              int64_t period_x) {
    fill_field(false, out, seed, stream, channels, iy0, ix0, rows, cols, period_x);
}

}  // namespace igan
