#pragma once
// Coordinate encoding of InfinityGAN (coord_handler.py of hubert0527/infinityGAN @ a9b45dd):
// channel 0 = tanh(vertical), channels 1, 2 = cos/sin of a periodic horizontal angle.
#include <torch/torch.h>

#include "model/config.h"

namespace igan {

// Output pixel (at the final resolution) of the centre of z_S / z_l cell j along one axis:
// pixel = upscale * j + cell_center_offset. Fixes where the canvas's latent lattice sits, so that
// pixel row 0 is the vertical centre (raw coordinate 0) of the training distribution.
int64_t ts_upscale(const GeneratorConfig& c);
double cell_center_offset(const GeneratorConfig& c);

// Inference coordinates of z_l cells [iy0, iy0+h) x [ix0, ix0+w): (1, 3, h, w). The horizontal
// angle has period `period_cells` (0: the config's), computed from the exact integer index modulo
// the period so that offsets of 2^40 lose no precision.
torch::Tensor coordinate_window(const GeneratorConfig& c, int64_t iy0, int64_t ix0, int64_t h,
                                int64_t w, int64_t period_cells = 0);

struct TrainingCoords {
    torch::Tensor coords;        // (B, 3, S, S) network input
    torch::Tensor grid_indices;  // (B, 3, S, S) raw values before jitter
    torch::Tensor ac_label;      // (B, 3) regression target of the fake patch
};

// The training branch of the original sampler: window (x_st, y_st) of the fixed training grid
// (vertical no wrap, horizontal modulo the grid width) plus a per-sample jitter added to the raw
// values of each channel. x_st, y_st: int64 (B); perturb: (B, 3).
TrainingCoords training_coords(const GeneratorConfig& c, const torch::Tensor& x_st,
                               const torch::Tensor& y_st, const torch::Tensor& perturb);
// Random starts and jitter (jitter only with coord_continuous) from `gen`.
TrainingCoords sample_training_coords(const GeneratorConfig& c, int64_t batch,
                                      torch::Generator& gen);

}  // namespace igan
