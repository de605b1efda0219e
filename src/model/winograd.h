#pragma once
// Stride-1 3x3 convolutions with fewer multiplications at inference on the CPU: Winograd's
// F(4x4, 3x3) through oneDNN, 36 products per 4x4 output tile and input channel instead of 144.
#include <torch/torch.h>

namespace igan {

// How the CPU runs the generator's stride-1 3x3 convolutions at inference (IGAN_CPU_CONV3X3):
// `automatic` by Winograd where it was measured faster (winograd_conv3x3_suits), else directly;
// `direct` always by LibTorch's direct convolution; `winograd` by Winograd wherever this build
// and CPU have it.
enum class Conv3x3Form { automatic, direct, winograd };
// The form in use: IGAN_CPU_CONV3X3 (auto, direct or winograd; unset: auto), read once, until
// set_cpu_conv3x3_form changes it for the whole process. Throws Error for another value.
Conv3x3Form cpu_conv3x3_form();
void set_cpu_conv3x3_form(Conv3x3Form form);
const char* conv3x3_form_name(Conv3x3Form form);

// Whether this build (oneDNN's headers) and this CPU (AVX-512) have the Winograd convolution.
bool winograd_conv3x3_available();

// Whether the form in use runs an in -> out channel 3x3 convolution of an h x w input by
// Winograd: `automatic` where both channel counts are multiples of 16 and at least 128 and the
// output is at least 8 x 8 (measured in igan_layer_bench: 1.7x at 128 channels, 2.2-2.7x at 512).
bool winograd_conv3x3_suits(int64_t in, int64_t out, int64_t h, int64_t w);

// F::conv2d(x, w) for x (B, in, H, W) (float, CPU, any strides) and w (out, in, 3, 3): valid,
// stride 1, NCHW result. Output tiles of 4 x 4 start at x's first row and column, so where x
// starts on a canvas changes results only by rounding; the error against the exact sum is a few
// times the direct convolution's (about 2e-6 of the output's magnitude at 512 channels).
// Output rows are made in bands of `band_tiles` tile rows (rounded up to a multiple of 4; 0: about
// 1000 tiles a band), which bounds the transformed input and output oneDNN keeps (36 floats per
// tile and channel each).
torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& w,
                               int64_t band_tiles = 0);

}  // namespace igan
