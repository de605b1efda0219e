#pragma once
// The descriptors of fd-mnv2 and kd-mnv2 (docs/features.md): Fréchet and kernel distances in
// the feature space of MobileNetV2's ImageNet blocks (nsfwjs' copy), not Inception's, so their
// values are not comparable with published FID/KID.
#include <torch/torch.h>

#include "features/mobilenet_v2.h"

namespace igan {

// ImageNet's resolution: images are resized to it, as FID resizes to 299.
constexpr int64_t kMnv2EvalSize = 224;
// 16 + 24 + 32 + 96: the four feature maps' channels.
constexpr int64_t kMnv2Descriptor = 168;

// (N, 3, H, W) in [-1, 1] -> (N, 168): the images resized bilinearly (align_corners false) to
// input_size x input_size, then each of the network's four maps (strides 2 to 16) averaged over
// space, concatenated. Runs on the network's device; returns CPU tensors.
torch::Tensor mnv2_descriptors(MobileNetV2Features net, const torch::Tensor& images,
                               int64_t input_size = kMnv2EvalSize);

}  // namespace igan
