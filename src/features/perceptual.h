#pragma once
// An unlearned LPIPS-style perceptual distance (Zhang et al., CVPR 2018, with every linear
// weight 1): at each of MobileNetV2Features' four maps, feature vectors are normalised to unit
// length across channels, and the squared distance between the two images' vectors is averaged
// over positions; the four maps' averages are then averaged. 0 for identical images, at most 4,
// symmetric, differentiable in both images (the network stays frozen).
#include <torch/torch.h>

#include "features/mobilenet_v2.h"

namespace igan {

// a, b: (N, 3, H, W) in [-1, 1], H and W >= 16 -> (N,) distances.
torch::Tensor perceptual_distance(MobileNetV2Features net, const torch::Tensor& a,
                                  const torch::Tensor& b);

}  // namespace igan
