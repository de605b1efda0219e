#pragma once
// ScaleInv (InfinityGAN, Lin et al., ICLR 2022, Table 1): render an image N times larger than
// the training images, resize it bilinearly back to the training size, and compare the result
// with the real images (FID there; any metric here). A generator that keeps the scale of its
// content when the canvas grows scores as at N = 1; one that zooms out, or repeats itself,
// degrades with N.
#include <torch/torch.h>

#include "render/canvas.h"
#include "render/renderer.h"

namespace igan {

// The canvas rectangle of a ScaleInv sample: (scale * full_size)^2 at x = 0, vertically centred
// on the horizon (y = -side / 2), as `igan generate` places images by default.
Rect scaleinv_rect(int64_t full_size, int64_t scale);

// (C, H, W) -> (C, h, w): bilinear, align_corners = false, no antialiasing (the paper's
// protocol: F.interpolate(mode="bilinear") on the generated batch).
torch::Tensor resize_bilinear(const torch::Tensor& image, int64_t h, int64_t w);

// One ScaleInv sample (3, full_size, full_size) in [-1, 1], rounded to 8-bit levels before
// the resize as a saved PNG would be. `options.fields.seed` selects the canvas.
torch::Tensor render_scaleinv(PatchModel& model, const RenderOptions& options, int64_t full_size,
                              int64_t scale);

}  // namespace igan
