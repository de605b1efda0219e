#pragma once
// A generator bound to one request's style: the PatchModel the renderer sees.
#include "model/generator.h"
#include "render/canvas.h"

namespace igan {

class StyledGenerator : public PatchModel {
public:
    // z_structure: raw global latent for G_S (1, G); styles: (1, n_latent, G).
    StyledGenerator(Generator g, torch::Device device, torch::Tensor z_structure,
                    torch::Tensor styles)
        : g_(std::move(g)), device_(device), z_structure_(std::move(z_structure)),
          styles_(std::move(styles)) {}
    // The plain style of a seed: z_g from the seed's field, every slot mapping(z_g).
    static std::unique_ptr<StyledGenerator> for_seed(Generator g, torch::Device device,
                                                     uint64_t seed) {
        torch::NoGradGuard no_grad;
        const auto& c = g->config;
        auto z = global_latent_for_seed(seed, c.global_latent_dim).to(device);
        auto styles = g->texture_synthesizer->mapping(z).unsqueeze(1).expand(
            {1, c.n_latent(), c.global_latent_dim}).contiguous();
        return std::make_unique<StyledGenerator>(g, device, z, styles);
    }
    const GeneratorConfig& config() const override { return g_->config; }
    torch::Device device() const override { return device_; }
    torch::Tensor synthesize(const PatchBatch& batch) override {
        auto z_s = g_->structure_synthesizer(z_structure_, batch.local_latent, batch.coords);
        return g_->texture_synthesizer(z_s, styles_, batch.noises);
    }

private:
    Generator g_;
    torch::Device device_;
    torch::Tensor z_structure_, styles_;
};

}  // namespace igan
