#pragma once
// A generator bound to one request's styles: the PatchModel the renderer sees. Besides one style
// everywhere it supports spatial style fusion (styles placed at canvas points) and pinned latents
// (inverted z_l cells and noise pixels at fixed canvas positions); both are functions of global
// canvas coordinates, so tiled renders still equal direct ones.
#include <memory>
#include <vector>

#include "model/generator.h"
#include "render/canvas.h"

namespace igan {

struct FusionCentre {
    double x = 0, y = 0;  // canvas pixels
};

// Mixing weights (N, h, w) of a grid whose pixel (r, c) sits at canvas pixel
// (y0 + r * step, x0 + c * step): the nearest centre wins, with a linear transition of width
// band_px across every boundary between two centres' regions.
torch::Tensor fusion_weights(const std::vector<FusionCentre>& centres, double band_px, double y0,
                             double x0, double step, int64_t h, int64_t w);

// Values that replace the canvas fields where their mask is 1; indices are global.
struct PinnedLatents {
    int64_t cell_y = 0, cell_x = 0;   // global z_l index of local[:, 0, 0]
    torch::Tensor local, local_mask;  // (L, h, w), (1, h, w)
    std::vector<std::pair<int64_t, int64_t>> noise_origin;  // per TS conv, global (row, col)
    std::vector<torch::Tensor> noise, noise_mask;           // per TS conv: (1, h, w)
};

// A seed's global latent z_g (1, G), drawn from its field, and its style mapping(z_g) (1, G).
std::pair<torch::Tensor, torch::Tensor> seed_latent_and_style(Generator& g, torch::Device device,
                                                              uint64_t seed);
// Styles w (N, G) repeated for every modulated layer: (N, n_latent, G).
torch::Tensor style_for_every_layer(const GeneratorConfig& config, const torch::Tensor& w);

class StyledGenerator : public PatchModel {
public:
    // One style everywhere. z_structure: raw global latent for G_S (1, G); styles: (1, n_latent, G).
    StyledGenerator(Generator g, torch::Device device, torch::Tensor z_structure,
                    torch::Tensor styles);
    // The plain style of a seed: z_g from the seed's field, every slot mapping(z_g).
    static std::unique_ptr<StyledGenerator> for_seed(Generator g, torch::Device device,
                                                     uint64_t seed);
    // Spatial style fusion: row i of z_palette (N, G) and style_palette (N, n_latent, G) rules
    // the pixels nearest centres[i].
    void fuse(torch::Tensor z_palette, torch::Tensor style_palette,
              std::vector<FusionCentre> centres, double band_px);
    void pin(PinnedLatents pins);
    // Colour maps of a coarse student's output (student_colour_map), one per style: the single
    // style, or each row of the fusion palette. Empty: none.
    void set_student_colours(std::vector<torch::Tensor> maps);

    const GeneratorConfig& config() const override { return g_->config; }
    torch::Device device() const override { return device_; }
    torch::Tensor synthesize(const PatchBatch& batch) override;

private:
    void apply_pins(PatchBatch& batch) const;
    torch::Tensor synthesize_student(const PatchBatch& batch) const;
    // The palette index ruling every layer of every patch, or -1 when the batch needs mixing.
    int64_t single_style(const SpatialStyles& ss, const SpatialStyles& ts) const;

    Generator g_;
    torch::Device device_;
    torch::Tensor z_structure_, styles_;
    torch::Tensor z_palette_, style_palette_;
    std::vector<FusionCentre> centres_;
    double band_px_ = 0;
    std::vector<PinnedLatents> pins_;
    std::vector<torch::Tensor> student_colours_;
};

}  // namespace igan
