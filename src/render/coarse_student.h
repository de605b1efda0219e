#pragma once
// Coarse students: a small network, distilled from a model, that renders a zoomed-out level
// (z = -3, -4 on the tiny config) straight from the canvas's own fields (the local latent and
// the coordinates, at the cells the level's pixels cover) and the seed's style, without running
// the structure or texture synthesizer. Its convolutions are valid (no padding) over a margin of
// the field window, so a tile is a function of global positions alone: tiles equal one direct
// render, in any order (docs/serving.md, "Zoomed-out levels").
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/generator.h"
#include "render/canvas.h"

namespace igan {

struct CoarseStudentConfig {
    int level = -3;  // the zoom level served, < 0
    // Latent cells per level pixel along a side: 2^-level native pixels over the model's cell.
    int cells = 1;
    int channels = 32;
    // One residual 3x3 layer per entry, with that dilation: a wide context at the cost of a
    // narrow stack; the margin (level pixels a tile reads beyond each edge) is their sum.
    std::vector<int> dilations = {1, 2, 4, 2, 1};
    // Latent cells the input window sits ahead of the pixels' own: where the model draws a
    // level pixel from (CanvasGeometry::lag of z_S, rounded to a whole level pixel).
    int shift = 0;
    int64_t latent_dim = 32, style_dim = 64;  // the model's local and global latent sizes
    // The first this many channels of the local latent field are read (channels are drawn in
    // groups of four, so these are the very values the model reads): a coarser level, with
    // more cells per pixel, reads fewer per cell to keep its field cost down.
    int64_t latent_channels = 32;

    int margin() const;
    std::vector<std::string> validate() const;  // every problem at once
    // The student of `level` for a model: its cell count and shift from the model's geometry.
    static CoarseStudentConfig for_level(const GeneratorConfig& model, int level);
};

// Every layer's activations modulated by the style (FiLM: x * (1 + gamma(w)) + beta(w)).
class CoarseStudentNetImpl : public torch::nn::Module {
public:
    explicit CoarseStudentNetImpl(const CoarseStudentConfig& config);
    // latent (B, latent_channels, k(h + 2m), k(w + 2m)) and coords (B, 3, ...) at k = cells
    // per level pixel, styles (B or 1, style_dim) -> (B, 3, h, w).
    torch::Tensor forward(const torch::Tensor& latent, const torch::Tensor& coords,
                          const torch::Tensor& styles);

    CoarseStudentConfig config;
    // The stem reads each level pixel's cells x cells block (a strided conv: no copy of the
    // fields into another layout).
    torch::nn::Conv2d stem{nullptr}, stem_coords{nullptr}, to_rgb{nullptr};
    torch::nn::ModuleList convs, films;
};
TORCH_MODULE(CoarseStudentNet);

struct CoarseStudent {
    CoarseStudentConfig config;
    CoarseStudentNet net{nullptr};
    double held_out_psnr = 0, held_out_min_psnr = 0;  // at fit time, against the box filter
};

// Fields for level tiles whose top-left pixels are origins[i] = (row, col) in that level's
// pixels, h x w pixels each, with the margin: the latent and coordinates of their cells through
// make_patch_batch (so every change to the canvas's latent field reaches the student too).
PatchBatch student_patch_batch(const CoarseStudentConfig& student, const GeneratorConfig& model,
                               const CanvasFields& fields,
                               const std::vector<std::pair<int64_t, int64_t>>& origins, int64_t h,
                               int64_t w, torch::Device device = torch::kCPU);

struct StudentFitOptions {
    int64_t samples = 4096;  // regions fitted on, one seed each (seed, seed + 1, ...)
    int64_t held_out = 32;   // regions on the seeds after those, measured only
    // Region side at the finest student level, in its pixels: many small regions, many seeds
    // (the style's colours are what a student gets wrong with few).
    int64_t side = 32;
    uint64_t seed = 1000;
    // Half the regions are centred within y_range / 4 native pixels of the horizon, half within
    // y_range: the horizon with its detail and the bands a zoomed-out tile spans.
    int64_t y_range = 4096;
    double seconds = 1080;  // wall-clock budget for the optimisation, over all students
    int64_t steps = 0;      // > 0: at most this many steps per student (reproducible runs)
    // Regions per step, output pixels per crop side (at most the region's at the coarsest level).
    int64_t batch = 8, crop = 24;
    double lr = 2e-3;
    int64_t tile = 256;  // teacher render tile (any value gives the same pixels)
    int channels = 32;   // the students' width and layers (CoarseStudentConfig)
    std::vector<int> dilations = {1, 2, 4, 2, 1};
};

struct StudentFitReport {
    int level = 0;
    int64_t steps = 0;
    double seconds = 0, first_loss = 0, last_loss = 0;  // L1 over the fit's first/last 50 steps
    double held_out_psnr = 0, held_out_min_psnr = 0;
};

// (done, total, what) over the teacher renders, the steps and the held-out renders.
using StudentProgressFn = std::function<void(int64_t, int64_t, const std::string&)>;

// Fits one student per level (each < 0, their cells a whole number) to the box-filtered native
// render of `g`, one optimisation after another within options.seconds.
std::vector<CoarseStudent> fit_coarse_students(Generator g, torch::Device device,
                                               const std::vector<int>& levels,
                                               const StudentFitOptions& options,
                                               std::vector<StudentFitReport>* reports,
                                               const StudentProgressFn& progress = {});

// Per-style colour maps. A student's worst misses are whole bands in another tone: the style's
// colours, which a small network learns from a few thousand seeds only. So a student's output
// for a style goes through a 3 x 4 affine map (A | b) fitted, once per seed, to the box-filtered
// native render of probe regions of that seed's own canvas (the sky band, the horizon and the
// ground band at x = 0): three probes pin the tones a tile mostly shows. The map is a function
// of the model, the student and the seed alone, so tiles stay functions of their address.

// The least-squares map of `from` onto `to` (both (3, N), the model's [-1, 1] RGB), pulled toward
// the identity by `ridge` (per pixel): probes of flat colour leave the fit underdetermined.
torch::Tensor fit_colour_map(const torch::Tensor& from, const torch::Tensor& to,
                             double ridge = 1e-2);
// rgb (B, 3, h, w) through a map (3, 4).
torch::Tensor apply_colour_map(const torch::Tensor& map, const torch::Tensor& rgb);
// Probe rectangles at a student's level, in that level's pixels (128 native pixels a side).
std::vector<Rect> colour_probes(const CoarseStudentConfig& student, const GeneratorConfig& model);
// The map of `student` for the canvas `model` renders (one style, no pins) with `fields`:
// renders the probes natively (box-filtered) and by the student (tile: the render tile).
torch::Tensor student_colour_map(PatchModel& model,
                                 const std::shared_ptr<const CoarseStudent>& student,
                                 const CanvasFields& fields, int64_t tile = 256);

// One Adam step of L1 towards `target` (B, 3, h, w) from a batch's fields and styles; returns
// the loss before the step. Exposed for tests.
double student_train_step(CoarseStudentNet& net, torch::optim::Optimizer& optimizer,
                          const PatchBatch& inputs, const torch::Tensor& styles,
                          const torch::Tensor& target);

}  // namespace igan
