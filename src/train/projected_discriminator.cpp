#include "train/projected_discriminator.h"

#include <cmath>

#include "core/error.h"

namespace igan {

namespace F = torch::nn::functional;
namespace nn = torch::nn;

DiscriminatorKind parse_discriminator_kind(const std::string& name) {
    if (name == "stylegan2") return DiscriminatorKind::kStyleGan2;
    if (name == "projected") return DiscriminatorKind::kProjected;
    if (name == "mixed") return DiscriminatorKind::kMixed;
    throw UsageError("--discriminator must be stylegan2, projected or mixed, not '" + name + "'");
}

std::string discriminator_kind_name(DiscriminatorKind kind) {
    switch (kind) {
        case DiscriminatorKind::kProjected: return "projected";
        case DiscriminatorKind::kMixed: return "mixed";
        case DiscriminatorKind::kStyleGan2: break;
    }
    return "stylegan2";
}

namespace {

constexpr int64_t kScales = 4;

nn::LeakyReLU lrelu() { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)); }

// Scale i (stride 2^(i+1)) is brought down to the deepest map's size by 3 - i strided convs.
nn::Sequential head(int64_t in, int64_t width, int64_t downs) {
    nn::Sequential s;
    for (int64_t j = 0; j < downs; ++j) {
        s->push_back(nn::Conv2d(nn::Conv2dOptions(j == 0 ? in : width, width, 3).stride(2).padding(1)));
        s->push_back(lrelu());
    }
    s->push_back(nn::Conv2d(nn::Conv2dOptions(downs == 0 ? in : width, width, 3).padding(1)));
    s->push_back(lrelu());
    s->push_back(nn::Conv2d(nn::Conv2dOptions(width, 1, 1)));
    return s;
}

}  // namespace

ProjectedDiscriminatorImpl::ProjectedDiscriminatorImpl(const ProjectedDiscriminatorConfig& c,
                                                       MobileNetV2Features f, uint64_t mixing_seed)
    : config(c), features(std::move(f)) {
    if (!features) throw Error("projected discriminator: no feature network");
    if (int64_t(c.mix_channels.size()) != kScales)
        throw Error("projected discriminator: mix_channels needs 4 widths");
    // Variance-preserving random projections (the features are linear block outputs).
    auto gen = at::make_generator<at::CPUGeneratorImpl>(mixing_seed);
    for (int64_t i = 0; i < kScales; ++i) {
        const int64_t in = MobileNetV2FeaturesImpl::kChannels[i], out = c.mix_channels[i];
        channel_mix.push_back(register_buffer("channel_mix_" + std::to_string(i),
                                              torch::randn({out, in, 1, 1}, gen) / std::sqrt(double(in))));
    }
    for (int64_t i = 0; i + 1 < kScales; ++i) {
        const int64_t in = c.mix_channels[i + 1], out = c.mix_channels[i];
        scale_mix.push_back(register_buffer("scale_mix_" + std::to_string(i),
                                            torch::randn({out, in, 3, 3}, gen) / std::sqrt(9.0 * in)));
    }
    for (int64_t i = 0; i < kScales; ++i)
        heads->push_back(head(c.mix_channels[i], c.head_channels, kScales - 1 - i));
    register_module("heads", heads);
    coord_head = register_module(
        "coord_head",
        nn::Sequential(nn::Conv2d(nn::Conv2dOptions(c.mix_channels[kScales - 1], c.head_channels, 3).padding(1)),
                       lrelu(), nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)), nn::Flatten(),
                       nn::Linear(c.head_channels, c.coord_num_dir)));
}

int64_t ProjectedDiscriminatorImpl::upsample_factor(int64_t patch) const {
    return std::max<int64_t>(1, (config.min_input + patch - 1) / patch);
}

DiscriminatorOutput ProjectedDiscriminatorImpl::forward(const torch::Tensor& image) {
    TORCH_CHECK(image.dim() == 4 && image.size(1) == 3, "discriminator input must be (B, 3, P, P), got ",
                image.sizes());
    auto x = image;
    const int64_t k = upsample_factor(std::min(image.size(2), image.size(3)));
    if (k > 1)
        x = F::interpolate(x, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{x.size(2) * k, x.size(3) * k})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));
    const auto f = features->forward(x);
    std::vector<torch::Tensor> m(kScales);
    for (int64_t i = 0; i < kScales; ++i) m[i] = F::conv2d(f[i], channel_mix[i]);
    for (int64_t i = kScales - 2; i >= 0; --i) {
        const auto up = F::interpolate(m[i + 1], F::InterpolateFuncOptions()
                                                     .size(std::vector<int64_t>{m[i].size(2), m[i].size(3)})
                                                     .mode(torch::kBilinear)
                                                     .align_corners(false));
        m[i] = m[i] + F::conv2d(up, scale_mix[i], F::Conv2dFuncOptions().padding(1));
    }
    std::vector<torch::Tensor> logits;
    for (int64_t i = 0; i < kScales; ++i)
        logits.push_back(heads[i]->as<nn::Sequential>()->forward(m[i]).flatten(1).mean(1));
    DiscriminatorOutput out;
    out.d_patch = torch::stack(logits, 1).mean(1, true);
    out.ac_coords_pred = coord_head->forward(m[kScales - 1]);
    out.trunk = out.final_conv = m[kScales - 1];
    return out;
}

}  // namespace igan
