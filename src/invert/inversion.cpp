#include "invert/inversion.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "features/perceptual.h"

namespace igan {

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kStyleSamples = 4096;
constexpr int kPerceptualLevels = 3;

// StyleGAN2's "Gaussianised" W: undoes the mapping's final leaky ReLU (slope 0.2, gain sqrt 2).
torch::Tensor gaussianise(const torch::Tensor& w) {
    return torch::leaky_relu(w, 5.0) / std::sqrt(2.0);
}

// Unit-length channel vectors of the first discriminator levels (an LPIPS-like comparison).
std::vector<torch::Tensor> perceptual_features(Discriminator d, torch::Tensor x) {
    std::vector<torch::Tensor> out;
    for (auto& module : *d->convs) {
        x = module.forward(x);
        out.push_back(x / (x.pow(2).sum(1, true).sqrt() + 1e-10));
        if (int(out.size()) == kPerceptualLevels || std::min(x.size(2), x.size(3)) < 8) break;
    }
    return out;
}

// Noise maps should stay white: penalise their autocorrelation at several scales (StyleGAN2
// projector).
torch::Tensor noise_regularisation(const std::vector<torch::Tensor>& noises) {
    auto loss = torch::zeros({}, noises[0].options());
    for (auto n : noises) {
        while (true) {
            loss = loss + (n * n.roll(1, 3)).mean().pow(2) + (n * n.roll(1, 2)).mean().pow(2);
            if (std::min(n.size(2), n.size(3)) <= 8) break;
            n = torch::avg_pool2d(n, 2);
        }
    }
    return loss;
}

torch::Tensor gaussian_prior(const torch::Tensor& x) {
    return x.mean().pow(2) + (x.std() - 1).pow(2);
}

double rmse(const torch::Tensor& pred, const torch::Tensor& target, const torch::Tensor& mask) {
    const auto d = (pred - target) * mask;
    return std::sqrt(d.pow(2).sum().item<double>() / (3 * mask.sum().item<double>()));
}

}  // namespace

Inversion invert(Generator g, torch::Device device, const InversionTarget& target,
                 const InversionSettings& settings, const InversionProgress& progress) {
    const auto& c = g->config;
    const CanvasGeometry geo(c);
    const int64_t up = geo.upscale(), r = geo.ss_margin();
    const int64_t h = target.image.size(1), w = target.image.size(2);
    if (target.mask.sum().item<double>() < 1) throw Error("the inversion target has no known pixel");
    if (settings.features && settings.feature_weight > 0 && std::min(h, w) < 16)
        throw Error("the feature loss needs an image of at least 16 x 16 pixels");
    const int64_t ay = floor_div(target.y, up), ax = floor_div(target.x, up);
    const int64_t oy = target.y - up * ay, ox = target.x - up * ax;
    const int64_t n = geo.window_for(std::max(h, w));
    auto batch = make_patch_batch(c, CanvasFields{settings.seed, 0}, {{ay, ax}}, n);

    // Statistics of W for the initial styles and the style prior.
    torch::Tensor mean_w, gauss_mean, gauss_std;
    {
        torch::NoGradGuard no_grad;
        auto z = torch::empty({kStyleSamples, c.global_latent_dim});
        fill_normal_field(z.data_ptr<float>(), settings.seed ^ 0xA5A5A5A5ull, kGlobalLatentStream,
                          c.global_latent_dim, 0, 0, kStyleSamples, 1);
        const auto ws = g->texture_synthesizer->mapping(z.to(device));
        mean_w = ws.mean(0, true);
        const auto gw = gaussianise(ws);
        gauss_mean = gw.mean(0);
        gauss_std = gw.std(0);
    }
    auto z = global_latent_for_seed(settings.seed, c.global_latent_dim).to(device).requires_grad_();
    auto styles = mean_w.unsqueeze(1).expand({1, c.n_latent(), c.global_latent_dim}).clone()
                      .requires_grad_();
    auto local = batch.local_latent.to(device).requires_grad_();
    std::vector<torch::Tensor> noises;
    for (const auto& noise : batch.noises) noises.push_back(noise.to(device).requires_grad_());
    const auto coords = batch.coords.to(device);
    const auto image = target.image.to(device).unsqueeze(0);
    const auto mask = target.mask.to(device).unsqueeze(0);

    auto& ss = g->structure_synthesizer;
    auto& ts = g->texture_synthesizer;
    auto render = [&](const torch::Tensor& zz, const torch::Tensor& ll, const torch::Tensor& st) {
        const auto out = ts(ss(zz, ll, coords), st, noises);
        return out.narrow(2, oy, h).narrow(3, ox, w);
    };

    // Which z_l cells and noise pixels reach a known pixel: the support of a random projection's
    // gradient. Only these are pinned; everything else stays free for new samples.
    PinnedLatents pins;
    {
        auto probe = at::detail::createCPUGenerator(settings.seed);
        const auto weights = torch::randn(image.sizes(), probe).to(device) * mask;
        (render(z, local, styles) * weights).sum().backward();
        pins.local_mask = (local.grad().abs().sum(1) > 0).to(torch::kFloat);  // (1, side, side)
        for (auto& noise : noises)
            pins.noise_mask.push_back((noise.grad().abs().sum(1) > 0).to(torch::kFloat));
    }

    const double slow = settings.lr / 10;
    std::vector<torch::Tensor> fast_params{styles};
    fast_params.insert(fast_params.end(), noises.begin(), noises.end());
    torch::optim::Adam fast(fast_params, torch::optim::AdamOptions(settings.lr).betas({0.9, 0.999}));
    torch::optim::Adam slow_opt({z, local}, torch::optim::AdamOptions(slow).betas({0.9, 0.999}));
    auto perturb = at::detail::createCPUGenerator(settings.seed + 1);
    const double style_noise = gauss_std.mean().item<double>() * 0.05;
    std::vector<torch::Tensor> target_features;
    if (settings.perceptual) {
        torch::NoGradGuard no_grad;
        target_features = perceptual_features(settings.perceptual, image * mask);
    }

    Inversion result;
    {
        torch::NoGradGuard no_grad;
        result.initial_rmse = rmse(render(z, local, styles), image, mask);
    }
    for (int64_t step = 0; step < settings.steps; ++step) {
        const double p = double(step) / double(settings.steps);
        const double rate = std::min(1.0, p / 0.05) *
                            (0.5 - 0.5 * std::cos(kPi * std::min(1.0, (1 - p) / 0.25)));
        for (auto& group : fast.param_groups())
            static_cast<torch::optim::AdamOptions&>(group.options()).lr(settings.lr * rate);
        for (auto& group : slow_opt.param_groups())
            static_cast<torch::optim::AdamOptions&>(group.options()).lr(slow * rate);
        const double ramp = std::pow(std::max(0.0, 1 - p / 0.75), 2);
        auto jitter = [&](const torch::Tensor& t, double std) {
            return t + torch::randn(t.sizes(), perturb).to(device) * std;
        };
        const auto pred = render(jitter(z, 0.2 * ramp), jitter(local, 0.2 * ramp),
                                 jitter(styles, style_noise * ramp));
        const auto diff = (pred - image) * mask;
        auto loss = settings.pixel_weight * 0.5 * diff.pow(2).sum() / (3 * mask.sum());
        if (settings.perceptual) {
            const auto features = perceptual_features(settings.perceptual, pred * mask);
            for (size_t i = 0; i < features.size(); ++i)
                loss = loss + settings.perceptual_weight *
                                  (features[i] - target_features[i]).pow(2).sum(1).mean();
        }
        if (settings.features && settings.feature_weight > 0) {
            const auto d = perceptual_distance(settings.features, pred * mask, image * mask);
            loss = loss + settings.feature_weight * d.mean();
        }
        loss = loss + settings.noise_weight * noise_regularisation(noises);
        loss = loss + settings.latent_prior_weight * (gaussian_prior(z) + gaussian_prior(local));
        loss = loss + settings.style_prior_weight *
                          ((gaussianise(styles) - gauss_mean) / gauss_std).pow(2).mean();
        fast.zero_grad();
        slow_opt.zero_grad();
        loss.backward();
        fast.step();
        slow_opt.step();
        {
            torch::NoGradGuard no_grad;
            for (auto& noise : noises) noise.sub_(noise.mean()).div_(noise.std() + 1e-8);
        }
        if (progress) progress(step + 1, settings.steps, loss.item<double>(), pred.detach()[0]);
    }

    torch::NoGradGuard no_grad;
    const auto final_pred = render(z, local, styles);
    result.final_rmse = rmse(final_pred, image, mask);
    result.reconstruction = final_pred[0].to(torch::kCPU);
    result.z = z.detach().clone();
    result.styles = styles.detach().clone();
    pins.cell_y = ay - r;
    pins.cell_x = ax - r;
    pins.local = local.detach()[0].to(torch::kCPU);
    pins.local_mask = pins.local_mask.to(torch::kCPU);
    const auto& strides = geo.strides();
    for (size_t k = 0; k < noises.size(); ++k) {
        pins.noise_origin.emplace_back(strides[k] * ay, strides[k] * ax);
        pins.noise.push_back(noises[k].detach()[0].to(torch::kCPU));
        pins.noise_mask[k] = pins.noise_mask[k].to(torch::kCPU);
    }
    result.pins = std::move(pins);
    return result;
}

}  // namespace igan
