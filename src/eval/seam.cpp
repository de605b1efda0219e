#include "eval/seam.h"

#include "core/error.h"
#include "core/rng.h"

namespace igan {

namespace {

// Sum and count of |differences| of neighbours along `dim` of (C, H, W), split by whether the
// pair straddles a multiple of `tile` or lies `phase` pixels from such a pair.
void accumulate(const torch::Tensor& image, int64_t dim, int64_t tile, int64_t phase, double& b_sum,
                int64_t& b_n, double& i_sum, int64_t& i_n) {
    const int64_t len = image.size(dim);
    if (len < 2) return;
    const auto diff = (image.narrow(dim, 1, len - 1) - image.narrow(dim, 0, len - 1)).abs();
    // Pair j joins pixels j and j + 1; it crosses a boundary when (j + 1) % tile == 0. Its
    // controls lie `phase` pixels to either side: same phase, same neighbourhood.
    const auto pos = torch::arange(1, len, torch::kLong);
    const auto boundary = (pos % tile) == 0;
    const auto inside = ((pos % tile) == phase) | ((pos % tile) == tile - phase);
    const auto reduce_dims = dim == 1 ? std::vector<int64_t>{0, 2} : std::vector<int64_t>{0, 1};
    const auto per_pair = diff.to(torch::kDouble).sum(reduce_dims);  // (len - 1,)
    const int64_t per_pair_count = image.numel() / len;
    b_sum += per_pair.masked_select(boundary).sum().item<double>();
    i_sum += per_pair.masked_select(inside).sum().item<double>();
    b_n += boundary.sum().item<int64_t>() * per_pair_count;
    i_n += inside.sum().item<int64_t>() * per_pair_count;
}

}  // namespace

BoundaryGradients boundary_gradients(const torch::Tensor& image, int64_t tile, int64_t phase) {
    TORCH_CHECK(image.dim() == 3, "boundary_gradients: expected (C, H, W)");
    if (tile < 2) throw Error("seam score: tile must be >= 2");
    if (phase < 1 || tile % phase != 0 || 2 * phase >= tile) phase = 1;
    const auto img = image.to(torch::kCPU, torch::kFloat);
    double b_sum = 0, i_sum = 0;
    int64_t b_n = 0, i_n = 0;
    accumulate(img, 2, tile, phase, b_sum, b_n, i_sum, i_n);
    accumulate(img, 1, tile, phase, b_sum, b_n, i_sum, i_n);
    if (b_n == 0 || i_n == 0)
        throw Error("seam score: the image (" + std::to_string(img.size(2)) + "x" +
                    std::to_string(img.size(1)) + ") must be larger than the tile (" +
                    std::to_string(tile) + ")");
    BoundaryGradients g;
    g.boundary = b_sum / double(b_n);
    g.inside = i_sum / double(i_n);
    g.ratio = g.inside > 0 ? g.boundary / g.inside : 0;
    g.boundary_pairs = b_n;
    g.inside_pairs = i_n;
    return g;
}

torch::Tensor render_independent_tiles(PatchModel& model, const Rect& rect, int64_t tile,
                                       const RenderOptions& options) {
    RenderOptions tiling = options;
    tiling.tile = tile;
    const TilePlan plan = plan_tiles(model.config(), rect, tiling);
    auto out = torch::empty({3, rect.h, rect.w});
    for (int64_t row = 0; row < plan.rows; ++row) {
        for (int64_t col = 0; col < plan.cols; ++col) {
            const Rect t = plan.tile_rect(row, col);
            RenderOptions o = options;
            o.tile = std::max(t.w, t.h);
            o.fields.seed = splitmix64(options.fields.seed ^ uint64_t(row * plan.cols + col + 1));
            out.narrow(1, t.y - rect.y, t.h)
                .narrow(2, t.x - rect.x, t.w)
                .copy_(render_region(model, t, o));
        }
    }
    return out;
}

SeamScore seam_score(PatchModel& model, const Rect& rect, int64_t tile,
                     const RenderOptions& options) {
    if (tile >= std::max(rect.w, rect.h))
        throw Error("seam score: the tile (" + std::to_string(tile) +
                    ") must be smaller than the rectangle");
    const int64_t phase = CanvasGeometry(model.config()).upscale();
    RenderOptions tiled_opts = options, direct_opts = options;
    tiled_opts.tile = tile;
    direct_opts.tile = std::max(rect.w, rect.h);
    const auto tiled = render_region(model, rect, tiled_opts);
    const auto direct = render_region(model, rect, direct_opts);
    const auto naive = render_independent_tiles(model, rect, tile, options);
    SeamScore s;
    s.max_abs_diff = (tiled - direct).abs().max().item<double>();
    s.tiled = boundary_gradients(tiled.clamp(-1, 1), tile, phase);
    s.naive = boundary_gradients(naive.clamp(-1, 1), tile, phase);
    return s;
}

}  // namespace igan
