#include "eval/scaleinv.h"

#include "core/error.h"
#include "eval/images.h"

namespace igan {

Rect scaleinv_rect(int64_t full_size, int64_t scale) {
    if (full_size <= 0 || scale <= 0) throw Error("ScaleInv: size and scale must be positive");
    const int64_t side = full_size * scale;
    return {0, -(side / 2), side, side};
}

torch::Tensor resize_bilinear(const torch::Tensor& image, int64_t h, int64_t w) {
    TORCH_CHECK(image.dim() == 3, "resize_bilinear: expected (C, H, W)");
    if (image.size(1) == h && image.size(2) == w) return image;
    namespace F = torch::nn::functional;
    return F::interpolate(image.unsqueeze(0).to(torch::kFloat),
                          F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{h, w})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(false))[0];
}

torch::Tensor render_scaleinv(PatchModel& model, const RenderOptions& options, int64_t full_size,
                              int64_t scale) {
    const auto rgb = render_region(model, scaleinv_rect(full_size, scale), options);
    return resize_bilinear(quantize_levels(rgb), full_size, full_size);
}

}  // namespace igan
