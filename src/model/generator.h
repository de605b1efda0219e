#pragma once
// InfinityGAN generator: structure synthesizer G_S (implicit function of z_g, z_l and
// coordinates) and padding-free texture synthesizer G_T (StyleGAN2 fed by z_S).
// Port of models/infinitygan_generator.py (hubert0527/infinityGAN @ a9b45dd); key names match.
#include <torch/torch.h>

#include <map>
#include <string>

#include "model/config.h"
#include "model/layers.h"

namespace igan {

using FeatureMap = std::map<std::string, torch::Tensor>;

// Per-pixel styles for spatial style fusion: a palette of N styles and, for every modulated
// layer, mixing weights (B, N, h, w) at that layer's input size.
struct SpatialStyles {
    torch::Tensor palette;                 // G_S: (N, G) raw z_g; G_T: (N, n_latent, G)
    std::vector<torch::Tensor> conv;       // one per SS block / TS conv
    std::vector<torch::Tensor> to_rgb;     // G_T only: one per ToRGB
};

// PixelNorm then n_mlp EqualLinear(lr_mul 0.01, leaky ReLU); keys "1".."n_mlp".
class MappingNetworkImpl : public torch::nn::Module {
public:
    MappingNetworkImpl(int64_t dim, int64_t n_mlp);
    torch::Tensor forward(const torch::Tensor& z);  // (..., dim) -> (..., dim)
    std::vector<EqualLinear> layers;
};
TORCH_MODULE(MappingNetwork);

// A ConditionalBlock of the original: holds one StyledConv under the key "conv".
class ConditionalBlockImpl : public torch::nn::Module {
public:
    ConditionalBlockImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim);
    StyledConv conv{nullptr};
};
TORCH_MODULE(ConditionalBlock);

class StructureSynthesizerImpl : public torch::nn::Module {
public:
    explicit StructureSynthesizerImpl(const GeneratorConfig& config);
    // z_global (B or 1, G) raw global latent; local_latent (B, L, h, w); coords (B or 1, 3, h, w)
    // -> z_S (B, L, h - 2*margin, w - 2*margin). With `spatial`, z_global is ignored.
    torch::Tensor forward(const torch::Tensor& z_global, const torch::Tensor& local_latent,
                          const torch::Tensor& coords, FeatureMap* features = nullptr,
                          const SpatialStyles* spatial = nullptr);
    // Input size of every block for a local latent of side `side`.
    std::vector<int64_t> block_input_sizes(int64_t side) const;
    GeneratorConfig config;
    std::vector<ConditionalBlock> blocks;
};
TORCH_MODULE(StructureSynthesizer);

class TextureSynthesizerImpl : public torch::nn::Module {
public:
    explicit TextureSynthesizerImpl(const GeneratorConfig& config);
    // Styles for every slot from a (B, 2, G) global latent with optional style mixing.
    torch::Tensor styles_from_latent(const torch::Tensor& global_latent, int64_t inject_index);
    // z_S (B, L, n, n); styles (B or 1, n_latent, G); noises: one (B, 1, H_k, W_k) map per conv
    // run. With `spatial`, styles is ignored. rgb_index >= 0 stops after that ToRGB and returns
    // its partial sum, the image at that ToRGB's coarser resolution (needs noises only for the
    // convs up to its source).
    torch::Tensor forward(const torch::Tensor& structure, const torch::Tensor& styles,
                          const std::vector<torch::Tensor>& noises, FeatureMap* features = nullptr,
                          const SpatialStyles* spatial = nullptr, int rgb_index = -1);
    GeneratorConfig config;
    MappingNetwork mapping{nullptr};
    std::vector<StyledConv> convs;
    std::vector<ToRGB> to_rgbs;
};
TORCH_MODULE(TextureSynthesizer);

struct GeneratorOutput {
    torch::Tensor styles;            // (B, n_latent, G)
    torch::Tensor structure_latent;  // (B, L, n, n)
    torch::Tensor image;             // (B, 3, H, W), unbounded
};

class GeneratorImpl : public torch::nn::Module {
public:
    explicit GeneratorImpl(const GeneratorConfig& config);
    // The original InfinityGanGenerator.forward with explicit inputs: global_latent (B, 2, G),
    // local_latent (B, L, h, w), coords (B, 3, h, w). inject_index < 0: every slot uses row 0.
    GeneratorOutput forward(const torch::Tensor& global_latent, const torch::Tensor& local_latent,
                            const torch::Tensor& coords, const std::vector<torch::Tensor>& noises,
                            int64_t inject_index = -1, FeatureMap* features = nullptr);
    GeneratorConfig config;
    StructureSynthesizer structure_synthesizer{nullptr};
    TextureSynthesizer texture_synthesizer{nullptr};
};
TORCH_MODULE(Generator);

// Spatial sizes of every texture conv's output for an input of n (odd sizes, no padding).
std::vector<int64_t> ts_output_sizes(const GeneratorConfig& config, int64_t n);
// Output pixels per z_S cell at conv k's resolution (2, 2, 4, 4, ...).
std::vector<int64_t> ts_strides(const GeneratorConfig& config);

}  // namespace igan

namespace igan {
// Multiply-accumulates of one generator pass for a z_S window of n x n (SS + TS + ToRGB).
double generator_macs(const GeneratorConfig& config, int64_t n);
}  // namespace igan
