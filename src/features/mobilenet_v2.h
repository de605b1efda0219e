#pragma once
// A fixed pretrained feature network: MobileNetV2 1.0 (Sandler et al., CVPR 2018) up to block 10,
// the part of nsfwjs 4.4.0's MobileNetV2 (docs/features.md) that keeps its ImageNet convolution
// weights. Layout of keras.applications.MobileNetV2 (Keras 2.2.4), which the TF.js file encodes:
// stride-2 convolutions pad one pixel at the bottom and right only (the graph's fixed
// ZeroPadding2D((0, 1), (0, 1))), stride-1 ones pad 1 all round, ReLU6 after the stem, every
// expand and every depthwise convolution. Batch norm is folded into each convolution's bias at
// conversion, so the module is convolutions only.
// Weights are frozen (requires_grad false); the outputs are differentiable with respect to the
// input, so the network can sit inside a loss or a discriminator.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/tfjs.h"

namespace igan {

// Expand 1x1 (absent when the expansion ratio is 1) -> depthwise 3x3 -> project 1x1 (linear),
// plus the input when shapes agree. Keys "expand", "depthwise", "project" (weight, bias).
class InvertedResidualImpl : public torch::nn::Module {
public:
    InvertedResidualImpl(int64_t in, int64_t out, int64_t expand_ratio, int64_t stride);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Conv2d expand{nullptr}, depthwise{nullptr}, project{nullptr};
    int64_t stride;
    bool residual;
};
TORCH_MODULE(InvertedResidual);

class MobileNetV2FeaturesImpl : public torch::nn::Module {
public:
    static constexpr int64_t kBlocks = 11;  // blocks 0..10
    // Output after blocks 0, 2, 5 and 10: the last block at strides 2, 4, 8 and 16.
    static constexpr int64_t kTaps[4] = {0, 2, 5, 10};
    static constexpr int64_t kChannels[4] = {16, 24, 32, 96};

    MobileNetV2FeaturesImpl();
    // (N, 3, H, W) RGB in [-1, 1] (igan's range; mapped to the [0, 1] the network was trained
    // on) -> four maps (N, C_i, H_i, W_i): C = kChannels, H_i = floor(H / 2^(i+1)), the same
    // for W; e.g. 101 px -> 50, 25, 12, 6. H and W must be at least 16.
    // The maps are channels-last in memory, as the weights are (.contiguous() before .view()).
    std::vector<torch::Tensor> forward(const torch::Tensor& rgb);

    torch::nn::Conv2d stem{nullptr};  // key "stem"
    torch::nn::ModuleList blocks;     // keys "blocks.0" ... "blocks.10"

private:
    std::vector<InvertedResidual> block_list_;
};
TORCH_MODULE(MobileNetV2Features);

constexpr const char* kMobileNetV2Arch = "mobilenetv2.features";
// Where scripts/fetch-features.sh writes the converted weights (relative to the repository).
constexpr const char* kDefaultFeaturesPath = "data-cache/features/mobilenetv2.safetensors";

// The weight file for MobileNetV2Features from a TF.js layers model of
// keras.applications.MobileNetV2 (alpha 1.0): Keras names mapped to the module's, kernels
// transposed (HWIO -> OIHW; depthwise H,W,C,1 -> C,1,H,W), batch norm folded (with the epsilon
// of each layer's config). Layers after block 10 and the classifier are skipped by name; every
// other missing, unexpected or mis-shaped weight is listed in one igan::Error. The metadata says
// where the weights came from (`origin`).
TensorFile mobilenet_v2_from_tfjs(const TfjsModel& model, const std::string& origin,
                                  const std::string& source);

// Strict loading (every problem in one igan::Error; a missing file names
// scripts/fetch-features.sh); eval mode, frozen, on `device`.
MobileNetV2Features load_mobilenet_v2(const std::string& path,
                                      const torch::Device& device = torch::kCPU);
MobileNetV2Features mobilenet_v2_from_tensors(const std::map<std::string, torch::Tensor>& tensors,
                                              const std::string& source);

}  // namespace igan
