#pragma once
// A Projected-GAN discriminator (Sauer et al., NeurIPS 2021, "Projected GANs Converge Faster"):
// frozen pretrained features (MobileNetV2 blocks 0-10, src/features) at four scales, fixed random
// cross-channel (1x1) and cross-scale (3x3, each deeper map upsampled and added into the next
// shallower one) mixing, and a small trainable head per scale; the heads' logit maps are averaged.
// InfinityGAN's vertical-position regression is a trainable head on the deepest mixed map.
// Only the heads are parameters. The mixing weights are buffers (in the state dict, never
// trained); the feature network is not registered, so it is in neither the parameters nor the
// state dict (the trainer loads it from the features file and moves it).
#include <torch/torch.h>

#include <string>
#include <vector>

#include "features/mobilenet_v2.h"
#include "model/discriminator.h"

namespace igan {

// kMixed: the projected and the StyleGAN2 (pixel-space) discriminators side by side, their losses
// summed. The pixel D sees what the feature network is blind to (the fine, row-wise streaks a
// projected-only fine-tune grows); R1 regularises the pixel D only.
enum class DiscriminatorKind { kStyleGan2, kProjected, kMixed };
DiscriminatorKind parse_discriminator_kind(const std::string& name);  // stylegan2|projected|mixed
std::string discriminator_kind_name(DiscriminatorKind kind);

struct ProjectedDiscriminatorConfig {
    // Patches are upsampled bilinearly by the smallest integer factor that reaches this side, so
    // that the stride-16 map is not 1-3 px (tiny's 53 px -> 106 -> maps 53, 26, 13, 6).
    int64_t min_input = 96;
    std::vector<int64_t> mix_channels = {32, 48, 64, 96};  // per scale, after channel mixing
    int64_t head_channels = 64;
    int coord_num_dir = 3;
};

class ProjectedDiscriminatorImpl : public torch::nn::Module {
public:
    // `features` must be frozen; `mixing_seed` draws the fixed random mixing weights.
    ProjectedDiscriminatorImpl(const ProjectedDiscriminatorConfig& config,
                               MobileNetV2Features features, uint64_t mixing_seed);
    // (B, 3, P, P) in [-1, 1] -> d_patch (B, 1), ac_coords_pred (B, coord_num_dir); trunk and
    // final_conv are the deepest mixed map.
    DiscriminatorOutput forward(const torch::Tensor& image);
    int64_t upsample_factor(int64_t patch) const;

    ProjectedDiscriminatorConfig config;
    MobileNetV2Features features;  // frozen, not registered
    std::vector<torch::Tensor> channel_mix;  // buffers "channel_mix_i": (C'_i, C_i, 1, 1)
    std::vector<torch::Tensor> scale_mix;    // buffers "scale_mix_i": (C'_i, C'_{i+1}, 3, 3)
    torch::nn::ModuleList heads;             // "heads.i": strided convs to a logit map
    torch::nn::Sequential coord_head{nullptr};
};
TORCH_MODULE(ProjectedDiscriminator);

}  // namespace igan
