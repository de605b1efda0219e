#pragma once
// The up layer at inference in channels-last form, for the texture synthesizer's narrow layers
// (tiny's 32-64 channels). There the NCHW banded form (layers.h, upsample2x_blur) spends as long
// summing, blurring and activating short rows of one channel as on its product; channels-last,
// each of those steps is a few vector operations per pixel across all channels, the product's
// weights are packed once per layer rather than its input once per band, and the 3x3
// convolutions that follow run on oneDNN's channels-last kernels without reorders.
#include <torch/torch.h>

#include "model/layers.h"

namespace igan {

// Whether an up layer of `in` -> `out` channels runs channels-last at inference. Wider layers
// (paper's 256-512) keep the NCHW banded form, measured at 0.84 of the peak with them.
bool upsample_channels_last_suits(int64_t in, int64_t out);

// upsample2x_blur(x, w, gain, ..., epilogue) for x in any memory format, `band_rows` input rows
// at a time (0: as many as keep one band's tap planes in cache); the result is channels-last.
torch::Tensor upsample2x_blur_channels_last(const torch::Tensor& x, const torch::Tensor& w,
                                            double gain, int64_t band_rows = 0,
                                            const UpsampleEpilogue* epilogue = nullptr);

}  // namespace igan
