#pragma once
// A second fixed pretrained feature network, independent of MobileNetV2: InceptionV3 (Szegedy et
// al., CVPR 2016) from the input to `mixed5`, the part of nsfwjs 4.4.0's InceptionV3
// (docs/features.md) that its Keras topology marks frozen and so keeps ImageNet weights. Layout
// of keras.applications.inception_v3 (Keras 2.2.4), which the TF.js file encodes and the
// converter checks layer by layer: the stem (3x3/2 valid, 3x3 valid, 3x3 same, max-pool 3x3/2,
// 1x1, 3x3 valid, max-pool 3x3/2), three 35x35 blocks (mixed0-2), the grid reduction mixed3 and
// two 17x17 blocks with factorised 7x7 convolutions (mixed4-5). 'same' convolutions pad
// symmetrically (stride 1, odd kernels); the 3x3 average pools of the pool branches are TF's
// 'same' pools, whose averages exclude the padded cells. Every convolution is followed by batch
// norm (no scale, folded into the convolution at conversion) and ReLU.
// Module keys: "stem.Conv2d_1a_3x3" ... "stem.Conv2d_4a_3x3", "mixed0.branch1x1" ... (torchvision's
// branch names), each a convolution with .weight and .bias.
// Weights are frozen; outputs are differentiable with respect to the input.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/tfjs.h"

namespace igan {

// One step of a branch: a convolution + ReLU, or a 3x3 pool.
struct InceptionStep {
    enum Kind { kConv, kAvgPool, kMaxPool } kind;
    std::string key;                  // module key of the convolution ("" for pools)
    torch::nn::Conv2d conv{nullptr};  // kConv only
    int64_t stride = 1;
    bool same = true;  // Keras padding 'same' (symmetric, stride 1) or 'valid'
};

// The stem (one branch) or a mixed block (branches concatenated along channels, in Keras'
// order: 1x1, 5x5 or 7x7, double 3x3 or 7x7, pool).
class InceptionBlockImpl : public torch::nn::Module {
public:
    enum class Kind { kStem, kA, kB, kC };
    // kA: `width` = the pool branch's channels; kC: the 7x7 branches' inner channels.
    InceptionBlockImpl(Kind kind, int64_t in, int64_t width = 0);
    torch::Tensor forward(const torch::Tensor& x);
    const std::vector<std::vector<InceptionStep>>& branches() const { return branches_; }
    int64_t out_channels() const { return out_; }

private:
    void conv(size_t branch, const std::string& key, int64_t in, int64_t out,
              std::vector<int64_t> kernel, int64_t stride = 1, bool same = true);
    void pool(size_t branch, InceptionStep::Kind kind, int64_t stride);
    std::vector<std::vector<InceptionStep>> branches_;
    int64_t out_ = 0;
};
TORCH_MODULE(InceptionBlock);

class InceptionV3Mixed5Impl : public torch::nn::Module {
public:
    static constexpr int64_t kChannels = 768;
    static constexpr int64_t kInputSize = 299;    // the size the network was trained at
    static constexpr int64_t kMinInputSize = 43;  // mixed3's input must be at least 3x3
    static constexpr int64_t kBlocks = 6;         // mixed0 .. mixed5

    InceptionV3Mixed5Impl();
    // (N, 3, H, W) RGB in [-1, 1] (mapped to the [0, 1] nsfwjs feeds the network) ->
    // (N, 768, h, w), mixed5's output; h = 17 at H = 299 (35 at mixed0-2). H, W >= 43.
    torch::Tensor forward(const torch::Tensor& rgb);

    InceptionBlock stem{nullptr};
    std::vector<InceptionBlock> mixed;  // keys "mixed0" ... "mixed5"
};
TORCH_MODULE(InceptionV3Mixed5);

constexpr const char* kInceptionV3Mixed5Arch = "inceptionv3.mixed5";
// Where scripts/fetch-features.sh writes the converted weights (relative to the repository).
constexpr const char* kDefaultIncV3FeaturesPath =
    "data-cache/features/inceptionv3-mixed5.safetensors";

// The weight file of InceptionV3Mixed5 from a TF.js layers model of
// keras.applications.InceptionV3. The converter follows the Keras graph back from `mixed5`:
// every layer, its class, kernel, strides, padding, filters, pool and activation must be what
// the module computes (all mismatches are listed in one igan::Error), batch norm is folded
// (each layer's epsilon), kernels are transposed HWIO -> OIHW. The layers after mixed5 are
// skipped; a weight of no layer in the topology, or not taken, is an error.
TensorFile inception_v3_mixed5_from_tfjs(const TfjsModel& model, const std::string& origin,
                                         const std::string& source);

// Strict loading (a missing file names scripts/fetch-features.sh); eval mode, frozen.
InceptionV3Mixed5 load_inception_v3_mixed5(const std::string& path,
                                           const torch::Device& device = torch::kCPU);
InceptionV3Mixed5 inception_v3_mixed5_from_tensors(
    const std::map<std::string, torch::Tensor>& tensors, const std::string& source);

}  // namespace igan
