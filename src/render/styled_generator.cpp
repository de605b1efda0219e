#include "render/styled_generator.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "render/coarse_head.h"
#include "render/coarse_student.h"

namespace igan {

torch::Tensor fusion_weights(const std::vector<FusionCentre>& centres, double band_px, double y0,
                             double x0, double step, int64_t h, int64_t w) {
    const size_t n = centres.size();
    auto out = torch::empty({int64_t(n), h, w});
    float* o = out.data_ptr<float>();
    std::vector<double> d2(n), f(n);
    for (int64_t r = 0; r < h; ++r) {
        const double py = y0 + double(r) * step;
        for (int64_t c = 0; c < w; ++c) {
            const double px = x0 + double(c) * step;
            for (size_t i = 0; i < n; ++i)
                d2[i] = (px - centres[i].x) * (px - centres[i].x) +
                        (py - centres[i].y) * (py - centres[i].y);
            double total = 0;
            for (size_t i = 0; i < n; ++i) {
                double v = 1;
                for (size_t j = 0; j < n && v > 0; ++j) {
                    if (j == i) continue;
                    // Signed distance from the bisector of centres i and j, positive on i's side.
                    const double sep = std::hypot(centres[i].x - centres[j].x,
                                                  centres[i].y - centres[j].y);
                    const double dist = (d2[j] - d2[i]) / (2 * sep);
                    v *= std::clamp(0.5 + dist / band_px, 0.0, 1.0);
                }
                f[i] = v;
                total += v;
            }
            for (size_t i = 0; i < n; ++i) o[(i * h + r) * w + c] = float(f[i] / total);
        }
    }
    return out;
}

StyledGenerator::StyledGenerator(Generator g, torch::Device device, torch::Tensor z_structure,
                                 torch::Tensor styles)
    : g_(std::move(g)), device_(device), z_structure_(std::move(z_structure)),
      styles_(std::move(styles)) {}

std::pair<torch::Tensor, torch::Tensor> seed_latent_and_style(Generator& g, torch::Device device,
                                                              uint64_t seed) {
    torch::NoGradGuard no_grad;
    auto z = global_latent_for_seed(seed, g->config.global_latent_dim).to(device);
    return {z, g->texture_synthesizer->mapping(z)};
}

torch::Tensor style_for_every_layer(const GeneratorConfig& c, const torch::Tensor& w) {
    return w.unsqueeze(1).expand({w.size(0), c.n_latent(), c.global_latent_dim}).contiguous();
}

std::unique_ptr<StyledGenerator> StyledGenerator::for_seed(Generator g, torch::Device device,
                                                           uint64_t seed) {
    auto [z, w] = seed_latent_and_style(g, device, seed);
    return std::make_unique<StyledGenerator>(g, device, z, style_for_every_layer(g->config, w));
}

void StyledGenerator::fuse(torch::Tensor z_palette, torch::Tensor style_palette,
                           std::vector<FusionCentre> centres, double band_px) {
    if (centres.empty() || int64_t(centres.size()) != z_palette.size(0) ||
        int64_t(centres.size()) != style_palette.size(0))
        throw Error("style fusion needs one style per centre");
    if (!(band_px > 0)) throw Error("the style transition band must be positive");
    for (size_t i = 0; i < centres.size(); ++i)
        for (size_t j = 0; j < i; ++j)
            if (centres[i].x == centres[j].x && centres[i].y == centres[j].y)
                throw Error("two styles share the centre (" + std::to_string(centres[i].x) + ", " +
                            std::to_string(centres[i].y) + "); give each style its own point");
    z_palette_ = z_palette.to(device_);
    style_palette_ = style_palette.to(device_);
    centres_ = std::move(centres);
    band_px_ = band_px;
}

void StyledGenerator::pin(PinnedLatents pins) {
    auto move = [&](torch::Tensor& t) { t = t.to(device_); };
    move(pins.local);
    move(pins.local_mask);
    for (auto& t : pins.noise) move(t);
    for (auto& t : pins.noise_mask) move(t);
    pins_.push_back(std::move(pins));
}

namespace {

// Replaces dst (C, H, W) at global origin (dy, dx) with src where mask (1, h, w) at (sy, sx) is 1.
void paste_masked(torch::Tensor dst, int64_t dy, int64_t dx, const torch::Tensor& src,
                  const torch::Tensor& mask, int64_t sy, int64_t sx) {
    const int64_t y0 = std::max(dy, sy), y1 = std::min(dy + dst.size(1), sy + src.size(1));
    const int64_t x0 = std::max(dx, sx), x1 = std::min(dx + dst.size(2), sx + src.size(2));
    if (y0 >= y1 || x0 >= x1) return;
    auto d = dst.narrow(1, y0 - dy, y1 - y0).narrow(2, x0 - dx, x1 - x0);
    auto s = src.narrow(1, y0 - sy, y1 - y0).narrow(2, x0 - sx, x1 - x0);
    auto m = mask.narrow(1, y0 - sy, y1 - y0).narrow(2, x0 - sx, x1 - x0);
    d.copy_(torch::where(m > 0.5, s, d));
}

}  // namespace

void StyledGenerator::apply_pins(PatchBatch& batch) const {
    if (pins_.empty()) return;
    const CanvasGeometry geo(config());
    const int64_t r = geo.ss_margin();
    for (size_t i = 0; i < batch.origins.size(); ++i) {
        const auto [ay, ax] = batch.origins[i];
        for (const auto& p : pins_) {
            paste_masked(batch.local_latent[i], ay - r, ax - r, p.local, p.local_mask, p.cell_y,
                         p.cell_x);
            for (size_t k = 0; k < batch.noises.size(); ++k) {
                const int64_t s = geo.strides()[k];
                paste_masked(batch.noises[k][i], s * ay, s * ax, p.noise[k], p.noise_mask[k],
                             p.noise_origin[k].first, p.noise_origin[k].second);
            }
        }
    }
}

int64_t StyledGenerator::single_style(const SpatialStyles& ss, const SpatialStyles& ts) const {
    int64_t found = -1;
    auto check = [&](const torch::Tensor& w) {
        const auto lowest = w.amin({2, 3}).to(torch::kCPU);  // (B, N)
        const auto best = lowest.argmax(1);
        for (int64_t b = 0; b < lowest.size(0); ++b) {
            const int64_t i = best[b].item<int64_t>();
            if (lowest[b][i].item<float>() != 1.0f || (found >= 0 && found != i)) return false;
            found = i;
        }
        return true;
    };
    for (const auto* group : {&ss.conv, &ts.conv, &ts.to_rgb})
        for (const auto& w : *group)
            if (!check(w)) return -1;
    return found;
}

void StyledGenerator::set_student_colours(std::vector<torch::Tensor> maps) {
    const size_t styles = centres_.empty() ? 1 : size_t(style_palette_.size(0));
    if (!maps.empty() && maps.size() != styles)
        throw Error("student colour maps: one per style expected");
    student_colours_ = std::move(maps);
}

torch::Tensor StyledGenerator::synthesize_student(const PatchBatch& batch) const {
    if (!pins_.empty()) throw Error("a coarse student does not read pinned latents");
    auto net = batch.student->net;  // a holder copy: the same shared weights, callable
    const auto& latent = batch.local_latent;
    auto coloured = [&](size_t style, const torch::Tensor& rgb) {
        return student_colours_.empty() ? rgb : apply_colour_map(student_colours_[style], rgb);
    };
    if (centres_.empty())
        return coloured(0, net->forward(latent, batch.coords, styles_.select(1, 0)));
    // Fusion: each style's image, mixed by the weights at the level pixels' centres.
    const double f = double(int64_t{1} << -batch.student->config.level);
    std::vector<torch::Tensor> per_patch;
    for (const auto& [y, x] : batch.origins)
        per_patch.push_back(fusion_weights(centres_, band_px_, f * double(y) + (f - 1) / 2,
                                           f * double(x) + (f - 1) / 2, f, batch.window_h,
                                           batch.window_w));
    const auto weights = torch::stack(per_patch).to(device_);  // (B, N, h, w)
    torch::Tensor out;
    for (int64_t n = 0; n < weights.size(1); ++n) {
        const auto wn = weights.narrow(1, n, 1);
        if (wn.max().item<float>() == 0) continue;
        const auto rgb = wn * coloured(size_t(n), net->forward(latent, batch.coords,
                                                               style_palette_.select(1, 0)[n]
                                                                   .unsqueeze(0)));
        out = out.defined() ? out + rgb : rgb;
    }
    return out;
}

torch::Tensor StyledGenerator::synthesize(const PatchBatch& in) {
    if (in.student) return synthesize_student(in);
    PatchBatch batch = in;
    if (!pins_.empty()) {
        batch.local_latent = batch.local_latent.clone();
        for (auto& noise : batch.noises) noise = noise.clone();
        apply_pins(batch);
    }
    auto& ss_net = g_->structure_synthesizer;
    auto& ts_net = g_->texture_synthesizer;
    const int rgb = batch.rgb_index;
    // Features for a coarse head (or the caller) instead of the image: z_S, or what the
    // texture synthesizer made up to that ToRGB.
    const bool head_input = batch.head || batch.features;
    if (rgb == kStructureLevel && !head_input) throw Error("z_S is no image: it needs a head");
    FeatureMap ts_features;
    std::vector<torch::Tensor> mods;  // set before finish() for a head
    auto finish = [&](const torch::Tensor& z_s, auto&& texture) -> torch::Tensor {
        if (!head_input) return texture(nullptr);
        if (rgb != kStructureLevel) texture(&ts_features);
        auto f = coarse_features(config(), rgb, z_s, ts_features, mods);
        return batch.features ? f : batch.head->apply(f);
    };
    if (centres_.empty()) {
        auto z_s = ss_net(z_structure_, batch.local_latent, batch.coords);
        if (head_input) mods = coarse_modulations(*ts_net, rgb, styles_);
        return finish(z_s, [&](FeatureMap* fm) {
            return ts_net(z_s, styles_, batch.noises, fm, nullptr, rgb);
        });
    }
    // Fusion: mixing weights for every modulated layer's input grid, placed on the canvas by the
    // full image's geometry (so a coarse level mixes where the full image does), for the layers
    // that run.
    const auto& c = config();
    const CanvasGeometry full(c), geo(c, rgb);
    const int64_t n_h = batch.window_h, n_w = batch.window_w, up = full.upscale();
    const auto rows = geo.layer_sizes(n_h), cols = geo.layer_sizes(n_w);
    const auto& strides = geo.strides();
    // A grid of h x w pixels at `stride` per z_S cell, centred in its n_h x n_w window.
    auto grid_weights = [&](int64_t h, int64_t w, int64_t stride) {
        std::vector<torch::Tensor> per_patch;
        const double step = double(up) / double(stride);
        auto offset = [&](int64_t n, int64_t size) {
            return (0.5 + double(stride * n - size) / 2) * step - full.margin() / 2.0 - 0.5;
        };
        const double oy = offset(n_h, h), ox = offset(n_w, w);
        for (const auto& [ay, ax] : batch.origins)
            per_patch.push_back(fusion_weights(centres_, band_px_, double(up * ay) + oy,
                                               double(up * ax) + ox, step, h, w));
        return torch::stack(per_patch).to(device_);
    };
    SpatialStyles ss{z_palette_, {}, {}}, ts{style_palette_, {}, {}};
    const auto ss_rows = ss_net->block_input_sizes(n_h + 2 * geo.ss_margin());
    const auto ss_cols = ss_net->block_input_sizes(n_w + 2 * geo.ss_margin());
    for (size_t i = 0; i < ss_rows.size(); ++i) ss.conv.push_back(grid_weights(ss_rows[i], ss_cols[i], 1));
    for (size_t i = 0; i < rows.size(); ++i)
        ts.conv.push_back(i == 0 ? grid_weights(n_h, n_w, 1)
                                 : grid_weights(rows[i - 1], cols[i - 1], strides[i - 1]));
    for (int src : c.to_rgb_src_conv())
        if (src < int64_t(rows.size()))
            ts.to_rgb.push_back(grid_weights(rows[src], cols[src], strides[src]));

    const int64_t only = single_style(ss, ts);
    if (only >= 0) {  // far from every boundary: the ordinary (faster) path
        auto z_s = ss_net(z_palette_.narrow(0, only, 1), batch.local_latent, batch.coords);
        if (head_input) mods = coarse_modulations(*ts_net, rgb, style_palette_.narrow(0, only, 1));
        return finish(z_s, [&](FeatureMap* fm) {
            return ts_net(z_s, style_palette_.narrow(0, only, 1), batch.noises, fm, nullptr, rgb);
        });
    }
    auto z_s = ss_net(torch::Tensor(), batch.local_latent, batch.coords, nullptr, &ss);
    if (head_input) {  // each style's modulations, mixed per pixel at the features' grid
        const auto weights = rgb == kStructureLevel ? grid_weights(n_h, n_w, 1)
                                                    : ts.to_rgb[size_t(rgb)];
        for (const auto& m : coarse_modulations(*ts_net, rgb, style_palette_))
            mods.push_back(torch::einsum("nc,bnhw->bchw", {m, weights}));
    }
    return finish(z_s, [&](FeatureMap* fm) {
        return ts_net(z_s, torch::Tensor(), batch.noises, fm, &ts, rgb);
    });
}

}  // namespace igan
