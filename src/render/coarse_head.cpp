#include "render/coarse_head.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "model/coords.h"
#include "render/renderer.h"
#include "render/styled_generator.h"

namespace igan {

torch::Tensor CoarseHead::apply(const torch::Tensor& features) const {
    TORCH_CHECK(features.dim() == 4 && features.size(1) == weight.size(1), "coarse head reads ",
                weight.size(1), " channels, got ", features.sizes());
    const auto w = weight.to(features.device()).view({3, weight.size(1), 1, 1});
    return torch::conv2d(features, w, bias.to(features.device()));
}

std::vector<int> coarse_sources(const GeneratorConfig& c) {
    std::vector<int> out;
    for (int k = int(c.to_rgb_src_conv().size()) - 2; k >= 0; --k) out.push_back(k);
    out.push_back(kStructureLevel);
    return out;
}

int coarse_level(const GeneratorConfig& c, int rgb_index) {
    return -int(std::lround(std::log2(double(ts_upscale(c)) /
                                      double(CanvasGeometry(c, rgb_index).upscale()))));
}

int64_t coarse_channels(const GeneratorConfig& c, int rgb_index) {
    if (rgb_index == kStructureLevel) return 3 * c.local_latent_dim;
    return 4 * c.ts_conv_out_channels[size_t(c.to_rgb_src_conv()[size_t(rgb_index)])] + 3;
}

std::vector<torch::Tensor> coarse_modulations(TextureSynthesizerImpl& ts, int rgb_index,
                                              const torch::Tensor& styles) {
    if (rgb_index == kStructureLevel) return {ts.convs[0]->conv->modulation(styles.select(1, 0))};
    const int src = ts.config.to_rgb_src_conv()[size_t(rgb_index)];
    const int tgt = int(ts.config.to_rgb_style_index()[size_t(rgb_index)]);
    return {ts.to_rgbs[size_t(rgb_index)]->conv->modulation(styles.select(1, tgt)),
            ts.convs[size_t(src + 1)]->conv->modulation(styles.select(1, src + 1))};
}

torch::Tensor coarse_features(const GeneratorConfig& c, int rgb_index,
                              const torch::Tensor& structure, const FeatureMap& ts,
                              const std::vector<torch::Tensor>& modulations) {
    const bool at_z_s = rgb_index == kStructureLevel;
    const auto f =
        at_z_s ? structure
               : ts.at("ts_conv" + std::to_string(c.to_rgb_src_conv()[size_t(rgb_index)]));
    std::vector<torch::Tensor> parts{f};
    for (const auto& m : modulations)
        parts.push_back(f * (m.dim() == 2 ? m.unsqueeze(-1).unsqueeze(-1) : m));
    parts.push_back(f * f);
    if (!at_z_s) parts.push_back(ts.at("ts_to_rgb" + std::to_string(rgb_index)));
    return torch::cat(parts, 1);
}

HeadFit::HeadFit(int64_t channels)
    : xtx_(torch::zeros({channels + 1, channels + 1}, torch::kFloat64)),
      xty_(torch::zeros({channels + 1, 3}, torch::kFloat64)) {}

void HeadFit::add(const torch::Tensor& features, const torch::Tensor& target) {
    const int64_t c = xtx_.size(0) - 1;
    TORCH_CHECK(features.dim() == 3 && features.size(0) == c && target.dim() == 3 &&
                    target.size(0) == 3 && features.size(1) == target.size(1) &&
                    features.size(2) == target.size(2),
                "head fit: features (", c, ", h, w) and target (3, h, w) expected, got ",
                features.sizes(), " and ", target.sizes());
    const auto f = features.to(torch::kCPU, torch::kFloat64).reshape({c, -1});
    const auto x = torch::cat({f, torch::ones({1, f.size(1)}, f.options())}).t();  // (N, C + 1)
    const auto y = target.to(torch::kCPU, torch::kFloat64).reshape({3, -1}).t();  // (N, 3)
    xtx_ += x.t().mm(x);
    xty_ += x.t().mm(y);
    pixels_ += x.size(0);
}

CoarseHead HeadFit::solve(int rgb_index, double ridge) const {
    if (pixels_ == 0) throw Error("coarse head fit: no pixels");
    const int64_t c = xtx_.size(0) - 1;
    auto a = xtx_.clone();
    // The ridge scales with the features' energy and spares the bias.
    const double lambda = ridge * a.diagonal().narrow(0, 0, c).mean().item<double>();
    a.diagonal().narrow(0, 0, c).add_(lambda);
    const auto sol = torch::linalg_solve(a, xty_);  // (C + 1, 3)
    CoarseHead h;
    h.rgb_index = rgb_index;
    h.weight = sol.narrow(0, 0, c).t().to(torch::kFloat32).contiguous();
    h.bias = sol[c].to(torch::kFloat32).contiguous();
    return h;
}

double psnr_8bit(const torch::Tensor& a, const torch::Tensor& b) {
    auto q = [](const torch::Tensor& t) {
        return ((t.to(torch::kCPU, torch::kFloat64).clamp(-1, 1) + 1) * 127.5).round();
    };
    const double mse = (q(a) - q(b)).pow(2).mean().item<double>();
    return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

torch::Tensor box_reference(const torch::Tensor& native, int64_t factor) {
    const auto q = ((native.clamp(-1, 1) + 1) * 127.5).round();
    return torch::avg_pool2d(q.unsqueeze(0), factor)[0].round() / 127.5 - 1;
}

CoarseFitResult fit_coarse_heads(Generator g, torch::Device device, const CoarseFitOptions& o,
                                 const FitProgressFn& progress) {
    if (o.samples < 1 || o.held_out < 0 || o.side < 4 || o.y_range < 0 || !(o.ridge >= 0))
        throw Error("coarse head fit: samples >= 1, held_out >= 0, side >= 4, y_range >= 0 and "
                    "ridge >= 0 needed");
    torch::NoGradGuard no_grad;
    const auto& c = g->config;
    const auto sources = coarse_sources(c);
    const int deepest = coarse_level(c, sources.back());
    const int64_t native_side = o.side << -deepest, up = ts_upscale(c);
    std::vector<HeadFit> fits;
    for (int s : sources) fits.emplace_back(coarse_channels(c, s));
    CoarseFitResult result;
    for (int s : sources) result.levels.push_back({coarse_level(c, s), s, 0, 0, 0});

    // Regions from a fixed generator (the same ones on every machine), on whole latent cells.
    std::mt19937_64 rng(o.seed);
    auto pick = [&](int64_t range) { return int64_t(rng() % uint64_t(2 * range + 1)) - range; };
    const int64_t total = o.samples + o.held_out;
    std::vector<std::vector<double>> held(sources.size()), partial(sources.size());
    for (int64_t i = 0; i < total; ++i) {
        const bool fitting = i < o.samples;
        const int64_t align = native_side / o.side;  // one coarsest-level pixel
        const int64_t y_centre = pick(o.y_range / align) * align;
        const Rect native{pick(int64_t{1} << 16) * up, y_centre - native_side / 2, native_side,
                          native_side};
        auto model = StyledGenerator::for_seed(g, device, o.seed + uint64_t(i));
        RenderOptions ro;
        ro.tile = o.tile;
        ro.fields.seed = o.seed + uint64_t(i);
        const auto image = render_region(*model, native, ro);
        for (size_t k = 0; k < sources.size(); ++k) {
            const int64_t f = int64_t{1} << -result.levels[k].level;
            const Rect level{native.x / f, native.y / f, native.w / f, native.h / f};
            RenderOptions lo = ro;
            lo.rgb_index = sources[k];
            lo.features = true;
            const auto feats = render_region(*model, level, lo);
            if (fitting) {
                fits[k].add(feats, torch::avg_pool2d(image.unsqueeze(0), f)[0]);
                continue;
            }
            if (result.heads.size() < sources.size()) {
                result.heads.clear();
                for (size_t j = 0; j < sources.size(); ++j)
                    result.heads.push_back(fits[j].solve(sources[j], o.ridge));
            }
            const auto ref = box_reference(image, f);
            held[k].push_back(psnr_8bit(result.heads[k].apply(feats.unsqueeze(0))[0], ref));
            if (sources[k] != kStructureLevel)
                partial[k].push_back(psnr_8bit(feats.narrow(0, feats.size(0) - 3, 3), ref));
        }
        if (progress) progress(i + 1, total);
    }
    if (result.heads.empty())
        for (size_t j = 0; j < sources.size(); ++j)
            result.heads.push_back(fits[j].solve(sources[j], o.ridge));
    auto mean = [](const std::vector<double>& v) {
        double m = 0;
        for (double x : v) m += x / double(v.size());
        return v.empty() ? 0.0 : m;
    };
    for (size_t k = 0; k < sources.size(); ++k) {
        auto& r = result.levels[k];
        r.held_out_psnr = mean(held[k]);
        r.held_out_min_psnr = held[k].empty() ? 0 : *std::min_element(held[k].begin(), held[k].end());
        r.partial_psnr = mean(partial[k]);
    }
    return result;
}

}  // namespace igan
