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
    const float slope = 0.2f, gain = float(M_SQRT2);
    if (noise) {
        for (int64_t i = 0; i < n; ++i) {
            const float t = (v[i] + noise[i] * noise_weight) + bias, negative = t * slope;
            v[i] = (t > 0.0f ? t : negative) * gain;
        }
    } else {
        for (int64_t i = 0; i < n; ++i) {
            const float t = v[i] + bias, negative = t * slope;
            v[i] = (t > 0.0f ? t : negative) * gain;
        }
    }
}

}  // namespace igan
