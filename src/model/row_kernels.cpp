#include "model/row_kernels.h"

#include <cmath>

// Built with -ffp-contract=off (CMakeLists.txt): an FMA where one build or one loop's tail has
// none would make a pixel's value depend on the CPU or on where it falls in a row.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define IGAN_ROW_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define IGAN_ROW_KERNEL
#endif

namespace igan {

namespace {

// Leaky ReLU (slope 0.2) times sqrt(2), as the tensor ops compute it; inlined into each clone.
[[gnu::always_inline]] inline float activate(float t) {
    const float negative = t * 0.2f;
    return (t > 0.0f ? t : negative) * float(M_SQRT2);
}

}  // namespace

IGAN_ROW_KERNEL
void add_rows(const float* __restrict a, const float* __restrict b, int64_t n,
              float* __restrict out) {
    for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

IGAN_ROW_KERNEL
void upsampled_row_blur(const float* __restrict t0, const float* __restrict t1,
                        const float* __restrict t2, int64_t w, float* __restrict out) {
    // Output 2s is centred on the upsampled row's odd column 2s + 1, output 2s + 1 on its even
    // column 2s + 2; q0 and q1 are the odd columns 2s + 1 and 2s + 3.
    for (int64_t s = 0; s < w - 2; ++s) {
        const float q0 = t0[s + 1] + t2[s], q1 = t0[s + 2] + t2[s + 1];
        out[2 * s] = q0 * 2.0f + t1[s] + t1[s + 1];
        out[2 * s + 1] = t1[s + 1] * 2.0f + q0 + q1;
    }
    const int64_t s = w - 2;
    out[2 * s] = (t0[s + 1] + t2[s]) * 2.0f + t1[s] + t1[s + 1];
}

IGAN_ROW_KERNEL
void blur_across_rows(const float* __restrict r0, const float* __restrict r1,
                      const float* __restrict r2, int64_t n, float scale, float* __restrict out) {
    for (int64_t i = 0; i < n; ++i) out[i] = (r1[i] * 2.0f + r0[i] + r2[i]) * scale;
}

IGAN_ROW_KERNEL
void noise_bias_activate(float* __restrict v, const float* __restrict noise, float noise_weight,
                         float bias, int64_t n) {
    if (noise) {
        for (int64_t i = 0; i < n; ++i) v[i] = activate((v[i] + noise[i] * noise_weight) + bias);
    } else {
        for (int64_t i = 0; i < n; ++i) v[i] = activate(v[i] + bias);
    }
}

namespace {

// Tap kx of pixel s, channel c: one plane's, or the sum of two (an odd upsampled row).
template <bool kSum>
[[gnu::always_inline]] inline float tap_at(const float* a, const float* b, int64_t i) {
    if constexpr (kSum) return a[i] + b[i];
    return a[i];
}

// The same operations, in the same order, as upsampled_row_blur's on each channel. The inner
// loops carry `ivdep`: their pointers, all into distinct buffers, are not restrict-qualified
// parameters, and without it GCC left these loops scalar.
template <bool kSum>
[[gnu::always_inline]] inline void upsampled_row_blur_cl(const float* a, const float* b,
                                                        int64_t tap, int64_t pixel, int64_t w,
                                                        int64_t n, float* out, int64_t out_pixel) {
    for (int64_t s = 0; s < w - 1; ++s) {
        // Pixels s and s + 1, and s + 2 for q1, which the last output (s = w - 2) does without.
        const float* p0 = a + s * pixel;
        const float* p1 = p0 + pixel;
        const float* u0 = kSum ? b + s * pixel : nullptr;
        const float* u1 = kSum ? u0 + pixel : nullptr;
        float* even = out + 2 * s * out_pixel;
        if (s == w - 2) {
#pragma GCC ivdep
            for (int64_t c = 0; c < n; ++c) {
                const float q0 = tap_at<kSum>(p1, u1, c) + tap_at<kSum>(p0, u0, 2 * tap + c);
                even[c] = q0 * 2.0f + tap_at<kSum>(p0, u0, tap + c) + tap_at<kSum>(p1, u1, tap + c);
            }
            break;
        }
        const float* p2 = p1 + pixel;
        const float* u2 = kSum ? u1 + pixel : nullptr;
        float* odd = even + out_pixel;
#pragma GCC ivdep
        for (int64_t c = 0; c < n; ++c) {
            const float q0 = tap_at<kSum>(p1, u1, c) + tap_at<kSum>(p0, u0, 2 * tap + c);
            const float q1 = tap_at<kSum>(p2, u2, c) + tap_at<kSum>(p1, u1, 2 * tap + c);
            const float t1s = tap_at<kSum>(p0, u0, tap + c), t1n = tap_at<kSum>(p1, u1, tap + c);
            even[c] = q0 * 2.0f + t1s + t1n;
            odd[c] = t1n * 2.0f + q0 + q1;
        }
    }
}

}  // namespace

IGAN_ROW_KERNEL
void upsampled_row_blur_channels_last(const float* a, const float* b, int64_t tap, int64_t pixel,
                                      int64_t w, int64_t n, float* out, int64_t out_pixel) {
    if (b) return upsampled_row_blur_cl<true>(a, b, tap, pixel, w, n, out, out_pixel);
    upsampled_row_blur_cl<false>(a, b, tap, pixel, w, n, out, out_pixel);
}

IGAN_ROW_KERNEL
void blur_rows_channels_last(const float* __restrict r0, const float* __restrict r1,
                             const float* __restrict r2, int64_t pixels, int64_t n, int64_t stride,
                             float scale, const float* __restrict noise, float noise_weight,
                             const float* __restrict bias, float* __restrict out,
                             int64_t out_stride) {
    for (int64_t j = 0; j < pixels; ++j) {
        const int64_t o = j * stride;
        float* __restrict d = out + j * out_stride;
        if (!bias) {
#pragma GCC ivdep
            for (int64_t c = 0; c < n; ++c)
                d[c] = (r1[o + c] * 2.0f + r0[o + c] + r2[o + c]) * scale;
            continue;
        }
        // noise_bias_activate's noise[i] * noise_weight, once per pixel.
        const float z = noise ? noise[j] * noise_weight : 0.0f;
#pragma GCC ivdep
        for (int64_t c = 0; c < n; ++c) {
            const float v = (r1[o + c] * 2.0f + r0[o + c] + r2[o + c]) * scale;
            d[c] = activate((noise ? v + z : v) + bias[c]);
        }
    }
}

IGAN_ROW_KERNEL
void noise_bias_activate_channels_last(float* __restrict v, const float* __restrict noise,
                                       float noise_weight, const float* __restrict bias,
                                       int64_t pixels, int64_t channels) {
    for (int64_t j = 0; j < pixels; ++j) {
        float* __restrict p = v + j * channels;
        if (noise) {
            const float z = noise[j] * noise_weight;
#pragma GCC ivdep
            for (int64_t c = 0; c < channels; ++c) p[c] = activate((p[c] + z) + bias[c]);
        } else {
#pragma GCC ivdep
            for (int64_t c = 0; c < channels; ++c) p[c] = activate(p[c] + bias[c]);
        }
    }
}

}  // namespace igan
