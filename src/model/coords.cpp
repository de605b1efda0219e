#include "model/coords.h"

#include <cmath>

#include "core/rng.h"
#include "model/generator.h"

namespace igan {

int64_t ts_upscale(const GeneratorConfig& c) { return int64_t(1) << c.num_upsamples(); }

double cell_center_offset(const GeneratorConfig& c) {
    const int64_t n = c.ts_input_size;
    const int64_t margin = ts_upscale(c) * n - ts_output_sizes(c, n).back();
    return double(ts_upscale(c) - margin - 1) / 2.0;
}

torch::Tensor coordinate_window(const GeneratorConfig& c, int64_t iy0, int64_t ix0, int64_t h,
                                int64_t w, int64_t period_cells) {
    const int64_t period = period_cells > 0 ? period_cells : c.hori_period();
    const double up = double(ts_upscale(c));
    const double origin = cell_center_offset(c) / up;
    auto out = torch::empty({1, 3, h, w});
    float* p = out.data_ptr<float>();
    for (int64_t r = 0; r < h; ++r) {
        const float v = float(std::tanh(c.vert_scale() * (double(iy0 + r) + origin)));
        for (int64_t col = 0; col < w; ++col) p[r * w + col] = v;
    }
    for (int64_t col = 0; col < w; ++col) {
        const double theta = M_PI * (2.0 * double(floor_mod(ix0 + col, period)) / period - 1.0);
        const float cs = float(std::cos(theta)), sn = float(std::sin(theta));
        for (int64_t r = 0; r < h; ++r) {
            p[h * w + r * w + col] = cs;
            p[2 * h * w + r * w + col] = sn;
        }
    }
    return out;
}

TrainingCoords training_coords(const GeneratorConfig& c, const torch::Tensor& x_st,
                               const torch::Tensor& y_st, const torch::Tensor& perturb) {
    const int64_t b = x_st.size(0), s = c.ss_input_size();
    const int64_t grid_h = c.coord_grid_height(), grid_w = c.coord_grid_width();
    const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
    auto rows = torch::arange(s, torch::kInt64).view({1, s}) + x_st.view({b, 1});          // (B, S)
    auto cols = (torch::arange(s, torch::kInt64).view({1, s}) + y_st.view({b, 1})) % grid_w;
    const double vscale = c.vert_scale();
    auto raw_v = (rows.to(torch::kFloat32) - float(grid_h - 1) / 2.0f) * float(vscale);
    auto raw_h = cols.to(torch::kFloat32) / float(grid_w - 1) * 2.0f - 1.0f;
    auto v = raw_v.view({b, s, 1}).expand({b, s, s});
    auto hz = raw_h.view({b, 1, s}).expand({b, s, s});
    TrainingCoords out;
    out.grid_indices = torch::stack({v, hz, hz}, 1).to(opts).contiguous();
    auto jit = out.grid_indices + perturb.view({b, 3, 1, 1});
    out.coords = torch::stack({torch::tanh(jit.select(1, 0)), torch::cos(M_PI * jit.select(1, 1)),
                               torch::sin(M_PI * jit.select(1, 2))},
                              1);
    auto n_y = y_st.to(torch::kFloat32) * 2.0f / float(grid_w - 1) - 1.0f;
    out.ac_label = torch::stack({x_st.to(torch::kFloat32) * 2.0f / float(c.coord_vert_sample_size - 1) - 1.0f,
                                 torch::cos(M_PI * n_y), torch::sin(M_PI * n_y)},
                                1);
    return out;
}

TrainingCoords sample_training_coords(const GeneratorConfig& c, int64_t batch,
                                      torch::Generator& gen) {
    auto x_st = torch::randint(0, c.coord_vert_sample_size, {batch}, gen, torch::kInt64);
    auto y_st = torch::randint(0, c.coord_grid_width(), {batch}, gen, torch::kInt64);
    auto perturb = torch::zeros({batch, 3});
    if (c.coord_continuous) {
        auto half = torch::tensor({float(c.vert_scale() / 2), 1.0f / float(c.coord_grid_width() - 1),
                                   1.0f / float(c.coord_grid_width() - 1)});
        perturb = (torch::rand({batch, 3}, gen) * 2 - 1) * half;
    }
    return training_coords(c, x_st, y_st, perturb);
}

}  // namespace igan
