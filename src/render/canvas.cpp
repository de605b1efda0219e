#include "render/canvas.h"

#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "core/rng_tensor.h"
#include "model/coords.h"
#include "model/generator.h"

namespace igan {

CanvasGeometry::CanvasGeometry(const GeneratorConfig& c, int rgb_index)
    : config_(c), ss_margin_(c.ss_margin()), strides_(ts_strides(c)) {
    const auto src = c.to_rgb_src_conv();
    if (rgb_index >= int(src.size())) throw Error("no ToRGB " + std::to_string(rgb_index));
    convs_ = rgb_index == kStructureLevel ? 0
             : rgb_index < 0              ? c.num_ts_convs()
                                          : src[rgb_index] + 1;
    strides_.resize(size_t(convs_));
    upscale_ = convs_ == 0 ? 1 : strides_.back();
    margin_ = convs_ == 0 ? 0 : upscale_ * c.ts_input_size - layer_sizes(c.ts_input_size).back();
}

double CanvasGeometry::lag() const {
    const CanvasGeometry full(config_);
    const double f = double(full.upscale()) / double(upscale_);
    return (double(full.margin()) - f * double(margin_)) / (2 * f);
}

int64_t CanvasGeometry::window_for(int64_t size) const {
    const int64_t need = (upscale_ - 1) + size + margin_;
    return std::max<int64_t>(3, (need + upscale_ - 1) / upscale_);
}

std::vector<int64_t> CanvasGeometry::layer_sizes(int64_t n) const {
    auto sizes = ts_output_sizes(config_, n);
    sizes.resize(size_t(convs_));
    return sizes;
}

double band_fade_factor(const GeneratorConfig& c, int64_t cell_row) {
    const double pixel = double(ts_upscale(c) * cell_row) + cell_center_offset(c);
    const double beyond = std::abs(pixel) - c.full_size / 2.0;
    return beyond <= 0 ? 1.0 : std::exp(-beyond / (0.3 * c.full_size));
}

namespace {

// Multiplies each window's local latent rows by band_fade_factor; rows inside the band are
// left alone so that windows there cost nothing.
void fade_beyond_band(const GeneratorConfig& c, const std::vector<int64_t>& ys,
                      torch::Tensor& local_latent) {
    const int64_t b = local_latent.size(0), h = local_latent.size(2);
    auto factors = torch::ones({b, 1, h, 1});
    auto f = factors.accessor<float, 4>();
    bool any = false;
    for (int64_t i = 0; i < b; ++i)
        for (int64_t r = 0; r < h; ++r) {
            f[i][0][r][0] = float(band_fade_factor(c, ys[size_t(i)] + r));
            any = any || f[i][0][r][0] != 1.0f;
        }
    if (any) local_latent.mul_(factors.to(local_latent.device()));
}

}  // namespace

PatchBatch make_patch_batch(const GeneratorConfig& c, const CanvasFields& fields,
                            const std::vector<std::pair<int64_t, int64_t>>& origins, int64_t n_h,
                            int64_t n_w, int rgb_index, torch::Device device) {
    const CanvasGeometry geo(c, rgb_index);
    const int64_t b = int64_t(origins.size());
    const int64_t r = geo.ss_margin(), side_h = n_h + 2 * r, side_w = n_w + 2 * r;
    const int64_t period_cells = fields.cyclic_period_px / ts_upscale(c);  // native pixels
    PatchBatch out;
    out.rgb_index = rgb_index;
    out.origins = origins;
    out.window_h = n_h;
    out.window_w = n_w;
    const bool on_host = device.is_cpu();
    std::vector<int64_t> ys, xs;  // z_S window origins, margin included
    for (const auto& [ay, ax] : origins) ys.push_back(ay - r), xs.push_back(ax - r);
    if (on_host) {
        out.local_latent = torch::empty({b, c.local_latent_dim, side_h, side_w});
        for (int64_t i = 0; i < b; ++i)
            fill_normal_field(out.local_latent[i].data_ptr<float>(), fields.seed,
                              kLocalLatentStream, c.local_latent_dim, ys[i], xs[i], side_h, side_w,
                              period_cells);
    } else {
        out.local_latent = normal_fields(device, fields.seed, kLocalLatentStream,
                                         c.local_latent_dim, ys, xs, side_h, side_w, period_cells);
    }
    if (fields.fade_beyond_band) fade_beyond_band(c, ys, out.local_latent);
    std::vector<torch::Tensor> coords;
    for (int64_t i = 0; i < b; ++i)
        coords.push_back(coordinate_window(c, ys[i], xs[i], side_h, side_w, period_cells));
    // Non-blocking: a blocking host-to-device copy would wait for every pass queued before it.
    out.coords = torch::cat(coords, 0).to(torch::TensorOptions().device(device), true);
    const auto rows = geo.layer_sizes(n_h), cols = geo.layer_sizes(n_w);
    for (size_t k = 0; k < rows.size(); ++k) {
        const int64_t s = geo.strides()[k];
        std::vector<int64_t> ny, nx;
        for (const auto& [ay, ax] : origins) ny.push_back(s * ay), nx.push_back(s * ax);
        if (!on_host) {
            out.noises.push_back(normal_fields(device, fields.seed, kNoiseStreamBase + k, 1, ny,
                                               nx, rows[k], cols[k], period_cells * s));
            continue;
        }
        auto noise = torch::empty({b, 1, rows[k], cols[k]});
        for (int64_t i = 0; i < b; ++i)
            fill_normal_field(noise[i].data_ptr<float>(), fields.seed, kNoiseStreamBase + k, 1,
                              ny[i], nx[i], rows[k], cols[k], period_cells * s);
        out.noises.push_back(noise);
    }
    return out;
}

torch::Tensor global_latent_for_seed(uint64_t seed, int64_t dim) {
    auto z = torch::empty({1, dim});
    fill_normal_field(z.data_ptr<float>(), seed, kGlobalLatentStream, dim, 0, 0, 1, 1);
    return z;
}

void check_cyclic_period(const GeneratorConfig& c, int64_t period_px) {
    const int64_t up = ts_upscale(c);
    if (period_px < 0 || period_px % up != 0 || period_px / up < 2)
        throw Error("cyclic width " + std::to_string(period_px) + " must be a positive multiple of " +
                    std::to_string(up) + " pixels (the model's latent cell size), at least " +
                    std::to_string(2 * up));
}

}  // namespace igan
