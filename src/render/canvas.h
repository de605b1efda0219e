#pragma once
// The endless canvas: which latent cells, coordinates and noise pixels make any output rectangle.
// Every value comes from a counter-based field of global integer coordinates, so a rectangle is
// the same whatever the tiling, batching, thread count or order that produced it.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"

namespace igan {

struct CoarseHead;
struct CoarseStudent;

// An rgb_index that stops before the texture synthesizer: the structure latent z_S itself, one
// pixel per latent cell (the level a coarse head reads at that scale, render/coarse_head.h).
constexpr int kStructureLevel = -2;

struct Rect {
    int64_t x = 0, y = 0, w = 0, h = 0;
};

// What the renderer asks of a generator: RGB for a batch of patches, nothing else.
struct PatchBatch {
    std::vector<std::pair<int64_t, int64_t>> origins;  // z_S window origin (row, col) per patch
    int64_t window_h = 0, window_w = 0;  // z_S window n_h x n_w
    torch::Tensor local_latent;          // (B, L, n_h + 2R, n_w + 2R)
    torch::Tensor coords;                // (B, 3, n_h + 2R, n_w + 2R)
    std::vector<torch::Tensor> noises;   // per texture conv run: (B, 1, H_k, W_k)
    // >= 0: stop at this ToRGB (a coarser image); -1: the full image; kStructureLevel: z_S.
    int rgb_index = -1;
    // With a coarse head: its RGB from the features at rgb_index; with `features`: those
    // features themselves, (B, C, h, w), the material a head is fitted on.
    std::shared_ptr<const CoarseHead> head;
    bool features = false;
    // With a coarse student (render/coarse_student.h): its level's RGB from local_latent and
    // coords, the fields of its cells (student_patch_batch); origins are then in level pixels.
    std::shared_ptr<const CoarseStudent> student;
};

class PatchModel {
public:
    virtual ~PatchModel() = default;
    virtual const GeneratorConfig& config() const = 0;
    virtual torch::Device device() const = 0;
    // (B, 3, out(n_h), out(n_w)) unbounded RGB for patches whose z_S window is n_h x n_w, at the
    // resolution of CanvasGeometry(config(), batch.rgb_index).
    virtual torch::Tensor synthesize(const PatchBatch& batch) = 0;
};

// Geometry of the texture synthesizer as seen from the canvas. With rgb_index >= 0, of the
// texture synthesizer stopped at that ToRGB: its partial sum is the canvas at upscale() pixels
// per cell, a zoomed-out level (layer_sizes and strides then cover the convs it runs). With
// kStructureLevel, of z_S: one pixel per cell, no margin, no texture convs.
class CanvasGeometry {
public:
    explicit CanvasGeometry(const GeneratorConfig& config, int rgb_index = -1);
    int64_t upscale() const { return upscale_; }  // output pixels per z_S cell
    int64_t margin() const { return margin_; }    // upscale * n - out(n), independent of n
    int64_t ss_margin() const { return ss_margin_; }
    // Smallest z_S window whose output covers `size` pixels starting at any offset in [0, upscale).
    int64_t window_for(int64_t size) const;
    int64_t output_size(int64_t n) const { return upscale_ * n - margin_; }
    // How far (in this level's pixels) its pixel q sits from the centre of the native pixels
    // it covers: a level pixel's output centre lags the full image's by half the difference of
    // their margins. A faithful level samples its own output at q + lag() (render_tiles does,
    // for coarse heads). 0 for the full image.
    double lag() const;
    const std::vector<int64_t>& strides() const { return strides_; }
    std::vector<int64_t> layer_sizes(int64_t n) const;

private:
    GeneratorConfig config_;
    int64_t upscale_ = 0, margin_ = 0, ss_margin_;
    std::vector<int64_t> strides_;
    int convs_ = 0;  // texture convs run
};

struct CanvasFields {
    uint64_t seed = 0;
    int64_t cyclic_period_px = 0;  // > 0: the canvas repeats horizontally with this period
    // Rows beyond the band the model was trained on fade their local latent toward zero
    // (band_fade_factor); false keeps the original's canvas, texture continued forever.
    bool fade_beyond_band = true;
};

// What the local latent of z_S cell row `cell_row` is multiplied by: 1 within the training
// band (the full image, centred on pixel row 0), exp(-d / (0.3 full_size)) at d pixels beyond
// it. Past the band the vertical coordinate saturates and the model stretches the texture of the
// band's edge rows, its sky and ground, into bands no photo shows; with the latent faded the
// sky becomes a smooth continuation of its colour and the ground an even plain
// (docs/evaluation.md, "Session 11": SWD at 2x 95.9 -> 83.3 on the shipped model).
double band_fade_factor(const GeneratorConfig& config, int64_t cell_row);

// Inputs of the patches whose z_S windows start at origins[i] = (row, col), n_h x n_w cells;
// with rgb_index >= 0, noise only for the convs up to that ToRGB. The latent and noise fields
// are drawn on `device` (the same values: core/rng_tensor.h), the coordinates copied there.
PatchBatch make_patch_batch(const GeneratorConfig& config, const CanvasFields& fields,
                            const std::vector<std::pair<int64_t, int64_t>>& origins, int64_t n_h,
                            int64_t n_w, int rgb_index = -1, torch::Device device = torch::kCPU);
inline PatchBatch make_patch_batch(const GeneratorConfig& config, const CanvasFields& fields,
                                   const std::vector<std::pair<int64_t, int64_t>>& origins,
                                   int64_t n) {
    return make_patch_batch(config, fields, origins, n, n);
}

// The raw global latent z_g of a seed: (1, G).
torch::Tensor global_latent_for_seed(uint64_t seed, int64_t dim);

// Checks a cyclic period against the geometry; throws igan::Error with the fix.
void check_cyclic_period(const GeneratorConfig& config, int64_t period_px);

}  // namespace igan
