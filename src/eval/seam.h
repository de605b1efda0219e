#pragma once
// Seam score: does tiled rendering leave traces at tile boundaries?
// 1. The exact check: render a rectangle with small tiles and as one tile; the max |difference|
//    (float RGB on the [-1, 1] scale) must be at round-off level (docs/contract.md: <= 1e-4).
// 2. The statistical check, which also applies to images from elsewhere: the mean |difference|
//    between neighbouring pixels across tile boundaries against the same inside tiles. Their
//    ratio is ~1.0 when seamless; a generator whose tiles do not share their context (naive
//    tiling of a zero-padded generator) has jumps at the boundaries and scores clearly above.
//    render_independent_tiles() produces such a reference from the model under test.
#include <torch/torch.h>

#include "render/canvas.h"
#include "render/renderer.h"

namespace igan {

struct BoundaryGradients {
    double boundary = 0;  // mean |I(p) - I(q)| over neighbours p, q on either side of a boundary
    double inside = 0;    // the same over the control pairs inside tiles
    double ratio = 0;     // boundary / inside
    int64_t boundary_pairs = 0, inside_pairs = 0;
};

// `image` (C, H, W) made of tile x tile squares starting at its top-left pixel. Horizontal and
// vertical neighbours count alike. The controls of a boundary pair are the pairs `phase` pixels
// to either side of it: in the same neighbourhood (so image structure cancels) and, when
// `phase` is the generator's upscale factor and the image origin lies on a multiple of it, at
// the same phase of the latent lattice (so the period-`upscale` texture of transposed
// convolutions does not bias the ratio). `phase` must divide `tile` and be below tile / 2;
// otherwise 1 is used (the immediate neighbours of the boundary pair).
BoundaryGradients boundary_gradients(const torch::Tensor& image, int64_t tile, int64_t phase = 1);

// Every tile of `rect` rendered on its own with a fresh canvas seed (local latents and noise;
// the model's global style stays): the "no shared context" reference.
torch::Tensor render_independent_tiles(PatchModel& model, const Rect& rect, int64_t tile,
                                       const RenderOptions& options);

struct SeamScore {
    double max_abs_diff = 0;  // max |tiled - direct|
    BoundaryGradients tiled;  // the tiled render (equal to the direct one when seamless)
    BoundaryGradients naive;  // render_independent_tiles()
};

// `options.fields` selects the canvas; `tile` must be smaller than the rectangle.
SeamScore seam_score(PatchModel& model, const Rect& rect, int64_t tile,
                     const RenderOptions& options);

}  // namespace igan
