#pragma once
// Row kernels of the generator's layers at inference (src/model/layers.cpp), on plain float
// rows: the up layers' tap-row sums and blur, and the noise + bias + leaky ReLU every styled
// convolution ends with; each in the NCHW form (one channel's row) and, for the texture
// synthesizer's 32-64-channel layers, the channels-last form (vectors across channels). Each is built for AVX-512, AVX2 and baseline x86-64 and picked at load
// time; all do the same operations in the same order (no contraction into FMA), so every
// machine and every position in a row gets the same bits.
#include <cstdint>

namespace igan {

// out = a + b over n floats.
void add_rows(const float* a, const float* b, int64_t n, float* out);

// The [1,2,1] valid blur along one row of the 2x upsampled map, made from that row's taps at
// input resolution (w >= 2 floats each): the upsampled row is t1[s] at column 2s and
// t0[s + 1] + t2[s] at column 2s + 1, 2w - 1 values; out gets its 2w - 3 blurred values.
void upsampled_row_blur(const float* t0, const float* t1, const float* t2, int64_t w, float* out);

// out = (r1 * 2 + r0 + r2) * scale over n floats: the blur across three such rows.
void blur_across_rows(const float* r0, const float* r1, const float* r2, int64_t n, float scale,
                      float* out);

// In place over n floats: t = v + noise * noise_weight + bias (no noise term when noise is
// null), then leaky ReLU (slope 0.2) times sqrt(2), in the tensor ops' order.
void noise_bias_activate(float* v, const float* noise, float noise_weight, float bias, int64_t n);

// Channels-last: pixel j's value of channel c at [j * stride + c], n channels of each pixel.

// upsampled_row_blur on channel vectors. Tap kx (0..2) of input pixel s is
// a[s * pixel + kx * tap + c], plus b[same] when b is not null (an odd upsampled row: tap row 0
// of the next input row plus tap row 2 of this one, summed as add_rows sums them); out gets
// 2w - 3 pixels `out_pixel` floats apart.
void upsampled_row_blur_channels_last(const float* a, const float* b, int64_t tap, int64_t pixel,
                                      int64_t w, int64_t n, float* out, int64_t out_pixel);

// blur_across_rows over `pixels` pixels, then, when bias is not null, noise_bias_activate with
// noise[j] (or none when null) for pixel j and bias[c] for channel c, in one pass; out's pixels
// are out_stride floats apart.
void blur_rows_channels_last(const float* r0, const float* r1, const float* r2, int64_t pixels,
                             int64_t n, int64_t stride, float scale, const float* noise,
                             float noise_weight, const float* bias, float* out,
                             int64_t out_stride);

// noise_bias_activate in place over `pixels` pixels of `channels` floats: noise[j] (none when
// null) for pixel j, bias[c] for channel c.
void noise_bias_activate_channels_last(float* v, const float* noise, float noise_weight,
                                       const float* bias, int64_t pixels, int64_t channels);

}  // namespace igan
