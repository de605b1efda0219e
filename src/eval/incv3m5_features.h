#pragma once
// The descriptors of fd-incv3m5 and kd-incv3m5 (docs/features.md): Fréchet and kernel distances
// of InceptionV3's mixed5 features (nsfwjs' copy, ImageNet weights up to mixed5), a feature space
// independent of the MobileNetV2 that the projected discriminator trains against. Not FID/KID:
// another layer (mixed5, not pool3) of another copy of the network, fed [0, 1] inputs.
#include <torch/torch.h>

#include "features/inception_v3.h"

namespace igan {

// The network's training resolution: images are resized to it, as FID resizes to 299.
constexpr int64_t kIncV3EvalSize = InceptionV3Mixed5Impl::kInputSize;
constexpr int64_t kIncV3Descriptor = InceptionV3Mixed5Impl::kChannels;  // 768

// (N, 3, H, W) in [-1, 1] -> (N, 768): the images resized bilinearly (align_corners false) to
// input_size x input_size, mixed5's map averaged over space. Runs on the network's device;
// returns CPU tensors.
torch::Tensor incv3m5_descriptors(InceptionV3Mixed5 net, const torch::Tensor& images,
                                  int64_t input_size = kIncV3EvalSize);

}  // namespace igan
