#pragma once
// The wide up layers (transposed 3x3 convolution, stride 2, then the [1,2,1] blur) at inference
// on the CPU with fewer multiplications. Along each axis the transposed convolution has two
// output phases: even outputs 2p = w1 x_p (one tap, nothing to save) and odd outputs
// 2p+1 = w2 x_p + w0 x_{p+1}, a 2-tap correlation that Winograd's F(4,2) makes 4 at a time
// from 5 products instead of 8. Per 4 x 4 input pixels the four 2-D phases then take
// 16 + 20 + 20 + 25 = 81 products per channel pair instead of 144 (9 per input pixel), as one
// matrix product per transform point (tiles by input channels, times that point's transformed
// weights: 36 distinct matrices, as the even phase's points all take tap 1).
#include <torch/torch.h>

#include "model/layers.h"

namespace igan {

// How the CPU runs an up layer at inference (IGAN_CPU_UP): `automatic` by Winograd where it was
// measured faster (winograd_up_suits), else by the tap planes (layers.h, and channels-last for
// narrow layers); `taps` always by the tap planes; `winograd` by Winograd at every width.
enum class UpForm { automatic, taps, winograd };
// The form in use: IGAN_CPU_UP (auto, taps or winograd; unset: taps), read once, until
// set_cpu_up_form changes it for the whole process. Throws Error for another value.
UpForm cpu_up_form();
void set_cpu_up_form(UpForm form);
const char* up_form_name(UpForm form);

// Whether the form in use runs an in -> out channel up layer of an h x w input by Winograd:
// `automatic` where both channel counts are at least 128 (paper's 256-512; the transforms cost
// per channel what the product saves per channel pair) and both sides at least 64 (the weight
// transform's fixed cost outweighed the saving on smaller inputs).
bool winograd_up_suits(int64_t in, int64_t out, int64_t h, int64_t w);

// upsample2x_blur(x, w, gain, ..., epilogue) for x (B, in, H >= 2, W >= 2) in any memory format
// and w (out, in, 3, 3) with any strides; the result is channels-last. Tiles of 4 x 4 input
// pixels start at x's first row and column, so where x starts on a canvas changes the result
// only by rounding. `band_tile_rows` tile rows at a time (0: about 128 tiles a band), which
// bounds the transformed input and output (81 floats per tile and channel each).
torch::Tensor upsample2x_blur_winograd(const torch::Tensor& x, const torch::Tensor& w,
                                       double gain, int64_t band_tile_rows = 0,
                                       const UpsampleEpilogue* epilogue = nullptr);

}  // namespace igan
