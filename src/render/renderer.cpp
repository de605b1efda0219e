#include "render/renderer.h"

#include <future>

#include "core/error.h"
#include "core/rng.h"

namespace igan {

Rect TilePlan::tile_rect(int64_t row, int64_t col) const {
    Rect t;
    t.x = rect.x + col * tile;
    t.y = rect.y + row * tile;
    t.w = std::min(tile, rect.w - col * tile);
    t.h = std::min(tile, rect.h - row * tile);
    return t;
}

TilePlan plan_tiles(const GeneratorConfig& config, const Rect& rect, int64_t tile,
                    bool exact_tile) {
    if (rect.w <= 0 || rect.h <= 0) throw Error("render size must be positive");
    if (tile <= 0) throw Error("tile size must be positive");
    TilePlan p;
    p.rect = rect;
    p.tile = exact_tile ? tile : std::min(tile, std::max(rect.w, rect.h));
    p.window = CanvasGeometry(config).window_for(p.tile);
    p.cols = (rect.w + p.tile - 1) / p.tile;
    p.rows = (rect.h + p.tile - 1) / p.tile;
    return p;
}

void render_tiles(PatchModel& model, const Rect& rect, const RenderOptions& options,
                  const TileFn& on_tile, const StripDoneFn& on_strip_done,
                  const TileProgressFn& on_progress) {
    torch::NoGradGuard no_grad;
    const auto& config = model.config();
    const CanvasGeometry geo(config);
    const TilePlan plan = plan_tiles(config, rect, options.tile, options.exact_tile);
    const int64_t up = geo.upscale(), n = plan.window, batch = std::max<int64_t>(1, options.batch);
    if (options.fields.cyclic_period_px > 0) check_cyclic_period(config, options.fields.cyclic_period_px);
    int64_t done = 0;
    for (int64_t row = 0; row < plan.rows; ++row) {
        const Rect first = plan.tile_rect(row, 0);
        for (int64_t col0 = 0; col0 < plan.cols; col0 += batch) {
            const int64_t count = std::min(batch, plan.cols - col0);
            std::vector<std::pair<int64_t, int64_t>> origins;
            std::vector<Rect> tiles;
            for (int64_t col = col0; col < col0 + count; ++col) {
                const Rect t = plan.tile_rect(row, col);
                tiles.push_back(t);
                origins.emplace_back(floor_div(t.y, up), floor_div(t.x, up));
            }
            auto inputs = make_patch_batch(config, options.fields, origins, n);
            auto to_device = [&](torch::Tensor& t) { t = t.to(model.device()); };
            to_device(inputs.local_latent);
            to_device(inputs.coords);
            for (auto& noise : inputs.noises) to_device(noise);
            const auto rgb = model.synthesize(inputs).to(torch::kCPU);
            for (int64_t i = 0; i < count; ++i) {
                const Rect& t = tiles[i];
                const int64_t oy = t.y - up * origins[i].first, ox = t.x - up * origins[i].second;
                on_tile(t, rgb[i].narrow(1, oy, t.h).narrow(2, ox, t.w));
            }
            done += count;
            if (on_progress) on_progress(done, plan.count());
        }
        on_strip_done(first.y - rect.y, first.h);
    }
}

void render_rows(PatchModel& model, const Rect& rect, const RenderOptions& options,
                 const RowsFn& on_rows, const TileProgressFn& on_progress) {
    const int64_t stride = 3 * rect.w;
    std::vector<uint8_t> buffers[2];
    int current = 0;
    std::future<void> pending;
    try {
        render_tiles(
            model, rect, options,
            [&](const Rect& t, const torch::Tensor& rgb) {
                auto& buf = buffers[current];
                if (buf.size() < size_t(stride * rgb.size(1))) buf.resize(stride * rgb.size(1));
                quantize_into(rgb, buf.data(), stride, t.x - rect.x);
            },
            [&](int64_t y0, int64_t rows) {
                if (pending.valid()) pending.get();
                const uint8_t* data = buffers[current].data();
                pending = std::async(std::launch::async,
                                     [&on_rows, data, y0, rows] { on_rows(data, y0, rows); });
                current ^= 1;
            },
            on_progress);
        if (pending.valid()) pending.get();
    } catch (...) {
        if (pending.valid()) pending.wait();
        throw;
    }
}

torch::Tensor render_region(PatchModel& model, const Rect& rect, const RenderOptions& options) {
    auto out = torch::empty({3, rect.h, rect.w});
    render_tiles(
        model, rect, options,
        [&](const Rect& t, const torch::Tensor& rgb) {
            out.narrow(1, t.y - rect.y, t.h).narrow(2, t.x - rect.x, t.w).copy_(rgb);
        },
        [](int64_t, int64_t) {});
    return out;
}

void quantize_into(const torch::Tensor& rgb, uint8_t* out, int64_t row_stride, int64_t x0) {
    const auto q = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8).permute({1, 2, 0})
                       .contiguous();
    const int64_t h = q.size(0), row_bytes = q.size(1) * 3;
    const uint8_t* src = q.data_ptr<uint8_t>();
    for (int64_t r = 0; r < h; ++r)
        std::copy(src + r * row_bytes, src + (r + 1) * row_bytes, out + r * row_stride + 3 * x0);
}

}  // namespace igan
