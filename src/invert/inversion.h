#pragma once
// GAN inversion on the endless canvas (In&Out style, docs/applications.md): find the global latent,
// per-slot styles (W+), the z_l cells and the noise pixels that reproduce a known image at a
// given canvas position. The result is pinned to the canvas, so any rectangle rendered around
// it continues the image with fresh latents elsewhere.
#include <torch/torch.h>

#include <functional>

#include "features/mobilenet_v2.h"
#include "model/discriminator.h"
#include "model/generator.h"
#include "render/styled_generator.h"

namespace igan {

struct InversionTarget {
    torch::Tensor image;  // (3, h, w) in [-1, 1]
    torch::Tensor mask;   // (1, h, w): 1 where the image is known
    int64_t x = 0, y = 0; // canvas position of image[:, 0, 0]
};

struct InversionSettings {
    int64_t steps = 200;
    double lr = 0.1;                 // base rate: W+ and noise; z_g and z_l use lr / 10
    uint64_t seed = 0;               // initial z_g, z_l and noise come from this seed's fields
    Discriminator perceptual{nullptr};  // its trunk features give the perceptual loss (optional)
    // MobileNetV2 features for an LPIPS-style distance (features/perceptual.h), weighted by
    // feature_weight (optional; the known region needs >= 16 px a side).
    MobileNetV2Features features{nullptr};
    double feature_weight = 0;
    // The original's noise weight (1000) suits full-canvas noise maps; a patch's small maps give
    // noisy autocorrelation estimates that then dominate the loss.
    double pixel_weight = 10, perceptual_weight = 10, noise_weight = 10;
    double latent_prior_weight = 1, style_prior_weight = 0.01;
};

struct Inversion {
    torch::Tensor z;       // (1, G) raw global latent for G_S
    torch::Tensor styles;  // (1, n_latent, G) W+
    PinnedLatents pins;    // the z_l cells and noise pixels that influence the known pixels
    torch::Tensor reconstruction;  // (3, h, w) the generator's output over the target
    double initial_rmse = 0, final_rmse = 0;  // over known pixels, on the [-1, 1] scale
};

// step, steps, total loss, the step's prediction (3, h, w) over the target
using InversionProgress =
    std::function<void(int64_t, int64_t, double, const torch::Tensor&)>;

Inversion invert(Generator g, torch::Device device, const InversionTarget& target,
                 const InversionSettings& settings, const InversionProgress& progress = {});

}  // namespace igan
