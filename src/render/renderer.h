#pragma once
// Tiled rendering of any canvas rectangle in constant memory: tiles are planned, batched, run
// through a PatchModel and handed out one finished strip (a row of tiles) at a time.
#include <torch/torch.h>

#include <functional>

#include "model/precision.h"
#include "render/canvas.h"

namespace igan {

struct RenderOptions {
    int64_t tile = 256;  // output pixels per tile side
    int64_t batch = 1;   // tiles per forward pass
    // Forward passes run concurrently, each on its own thread with an equal share of the calling
    // thread's intra-op threads. 0: one per intra-op thread (small convolutions scale far
    // better across tiles than inside one); 1: one pass at a time on the calling thread. Memory
    // grows with it: every worker holds one pass's activations.
    int64_t workers = 0;
    // Use `tile` as it is; by default a rectangle smaller than a tile gets a smaller tile. Shards
    // of one render keep the whole render's tile so they compute the very same tiles.
    bool exact_tile = false;
    // > 0: tiles are at most this tall (and `tile` wide), so that a strip of a very wide render
    // holds fewer rows; render_rows keeps two strips of 8-bit rows.
    int64_t max_tile_height = 0;
    // >= 0: render a zoomed-out level from the partial sum at that ToRGB (the texture synthesis
    // stops there); the rectangle is then in that level's pixels, CanvasGeometry(config,
    // rgb_index).upscale() per latent cell. -1: the full image.
    int rgb_index = -1;
    // A fitted coarse head turns the features at rgb_index into RGB; `features` renders those
    // features instead (C channels per tile; render_region only). See render/coarse_head.h.
    std::shared_ptr<const CoarseHead> head;
    bool features = false;
    // A coarse student renders its level from the canvas's fields alone (rgb_index must then be
    // kStructureLevel: tiles are planned one level pixel per window cell).
    std::shared_ptr<const CoarseStudent> student;
    CanvasFields fields;
    // The convolutions' precision (model/precision.h); tf32 also needs use_cuda_math.
    Precision precision = Precision::fp32;
};

struct TilePlan {
    Rect rect;
    int64_t tile_w = 0, tile_h = 0;      // output pixels per tile
    int64_t window_h = 0, window_w = 0;  // z_S window n_h x n_w of every tile
    int64_t cols = 0, rows = 0;
    int64_t count() const { return cols * rows; }
    Rect tile_rect(int64_t row, int64_t col) const;
    // Tile rows [row0, row1) as a plan of their own: the very tiles of this one (a shard).
    TilePlan strips(int64_t row0, int64_t row1) const;
};

// Also checks a cyclic period (check_cyclic_period): a plan is a canvas that can be rendered.
TilePlan plan_tiles(const GeneratorConfig& config, const Rect& rect, const RenderOptions& options);

// Forward passes a render with enough tiles runs at once: options.workers (0: one per intra-op
// thread) on the CPU, one on a GPU (one device queue: concurrency buys nothing there).
int64_t concurrent_passes(const RenderOptions& options, const PatchModel& model);

// Called with (tiles done, tiles total).
using TileProgressFn = std::function<void(int64_t, int64_t)>;
// A finished tile: its rectangle (canvas coordinates) and float RGB (3, t.h, t.w) on CPU.
using TileFn = std::function<void(const Rect& tile, const torch::Tensor& rgb)>;
// Every tile of rows [y0, y0 + rows) (relative to the rectangle) has been delivered.
using StripDoneFn = std::function<void(int64_t y0, int64_t rows)>;

// Tiles arrive in row-major order, one strip (row of tiles) after another, so a consumer can
// stream rows out holding only one strip. Callbacks run on the calling thread, whatever the
// number of workers. On CUDA each pass's output comes back by an asynchronous copy into pinned
// memory while the next pass computes. render_plan_tiles renders a plan as it is (plan_tiles of
// the model's config, the rectangle and these options, or strips of one); render_tiles plans
// first.
void render_plan_tiles(PatchModel& model, const TilePlan& plan, const RenderOptions& options,
                       const TileFn& on_tile, const StripDoneFn& on_strip_done,
                       const TileProgressFn& on_progress = {});
void render_tiles(PatchModel& model, const Rect& rect, const RenderOptions& options,
                  const TileFn& on_tile, const StripDoneFn& on_strip_done,
                  const TileProgressFn& on_progress = {});

// 8-bit RGB rows of the rectangle, one finished strip at a time. Double buffered: on_rows runs
// on a helper thread while the next strip renders, so compression overlaps rendering; an
// exception from it ends the render and is rethrown. The rows are the consumer's to change
// until it returns (outpainting pastes its known pixels into them).
using RowsFn = std::function<void(uint8_t* rows, int64_t y0, int64_t count)>;
void render_plan_rows(PatchModel& model, const TilePlan& plan, const RenderOptions& options,
                      const RowsFn& on_rows, const TileProgressFn& on_progress = {});
void render_rows(PatchModel& model, const Rect& rect, const RenderOptions& options,
                 const RowsFn& on_rows, const TileProgressFn& on_progress = {});

// render_rows keeps two strips of 8-bit rows. The tile height that holds them within a fixed
// budget (32 MB) at this width, so memory stays flat as renders widen; never below 64 rows,
// whose margin already costs a third more work. Past about 21,000 px it is below 256.
int64_t streaming_tile_height_cap(int64_t width);

// The whole rectangle at once (3, h, w), or (C, h, w) with options.features; for tests, fitting
// and small requests.
torch::Tensor render_region(PatchModel& model, const Rect& rect, const RenderOptions& options);

// [-1, 1] float RGB (3, h, w) into interleaved 8-bit rows of `row_stride` bytes at column x0.
void quantize_into(const torch::Tensor& rgb, uint8_t* out, int64_t row_stride, int64_t x0);

}  // namespace igan
