#include "core/rng_tensor.h"

#include "core/rng.h"

namespace igan {

namespace {

constexpr int64_t kWord = int64_t(1) << 32, kHalf = int64_t(1) << 16;
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // as rng.cpp's schedule
constexpr int64_t kMul0 = 0xD2511F53, kMul1 = 0xCD9E8D57;

torch::Tensor low16(const torch::Tensor& x) { return torch::bitwise_and(x, kHalf - 1); }
torch::Tensor low32(const torch::Tensor& x) { return torch::bitwise_and(x, kWord - 1); }
// x >> bits for the non-negative values used here.
torch::Tensor shift_down(const torch::Tensor& x, int64_t factor) {
    return torch::div(x, factor, "floor");
}

// The high and low words of m * c for a 32-bit constant m and 32-bit words c:
// m * c = (m * c_hi) * 2^16 + m * c_lo, each product below 2^48.
std::pair<torch::Tensor, torch::Tensor> mul_hi_lo(int64_t m, const torch::Tensor& c) {
    const auto lo_part = low16(c) * m;
    const auto hi_part = shift_down(c, kHalf) * m;
    const auto sum = lo_part + low16(hi_part) * kHalf;  // below 2^49
    return {low32(shift_down(hi_part, kHalf) + shift_down(sum, kWord)), low32(sum)};
}

}  // namespace

std::array<torch::Tensor, 4> philox4x32(std::array<torch::Tensor, 4> c,
                                        std::array<uint32_t, 2> key) {
    for (int round = 0; round < 10; ++round) {
        auto [hi0, lo0] = mul_hi_lo(kMul0, c[0]);
        auto [hi1, lo1] = mul_hi_lo(kMul1, c[2]);
        c = {torch::bitwise_xor(torch::bitwise_xor(hi1, c[1]), int64_t(key[0])), lo1,
             torch::bitwise_xor(torch::bitwise_xor(hi0, c[3]), int64_t(key[1])), lo0};
        key[0] += kWeyl0;
        key[1] += kWeyl1;
    }
    return c;
}

torch::Tensor normal_fields(torch::Device device, uint64_t seed, uint64_t stream, int64_t channels,
                            const std::vector<int64_t>& iy0, const std::vector<int64_t>& ix0,
                            int64_t rows, int64_t cols, int64_t period_x) {
    const int64_t n = int64_t(iy0.size());
    const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
    // Cell coordinates, (n, rows, 1) and (n, 1, cols); the counter holds their 64-bit patterns.
    auto iy = torch::tensor(iy0, torch::kInt64).to(device).view({n, 1, 1}) +
              torch::arange(rows, i64).view({1, rows, 1});
    auto ix = torch::tensor(ix0, torch::kInt64).to(device).view({n, 1, 1}) +
              torch::arange(cols, i64).view({1, 1, cols});
    if (period_x > 0) ix = torch::remainder(ix, period_x);
    const auto words = [](const torch::Tensor& v) {
        // Two's complement words: the arithmetic shift's sign bits are masked off.
        return std::make_pair(low32(v), low32(torch::div(v - low32(v), kWord, "floor")));
    };
    const auto [x_lo, x_hi] = words(ix);
    const auto [y_lo, y_hi] = words(iy);
    const double inv32 = 1.0 / 4294967296.0;
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
    std::vector<torch::Tensor> out;
    for (int64_t g = 0; g * 4 < channels; ++g) {
        const auto bits =
            philox4x32({x_lo, x_hi, y_lo, y_hi}, stream_key(seed, stream, uint64_t(g)));
        const int64_t used = std::min<int64_t>(4, channels - 4 * g);
        for (int64_t pair = 0; 2 * pair < used; ++pair) {
            // Box-Muller as rng.cpp's: u1 in (0, 1], the sine half only where it is used.
            const auto u1 = (bits[size_t(2 * pair)].to(f64) + 0.5) * inv32;
            const auto theta = 6.283185307179586 * (bits[size_t(2 * pair + 1)].to(f64) * inv32);
            const auto r = torch::sqrt(torch::log(u1) * -2.0);
            out.push_back((r * torch::cos(theta)).to(torch::kFloat32));
            if (2 * pair + 1 < used) out.push_back((r * torch::sin(theta)).to(torch::kFloat32));
        }
    }
    return torch::stack(out, 1);
}

}  // namespace igan
