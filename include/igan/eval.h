#pragma once
// `igan eval`: quality metrics over a model or image folders (src/eval/run.cpp).
#include <cstdint>
#include <string>
#include <vector>

#include "igan/progress.h"

namespace igan {

// Quality metrics (docs/evaluation.md). Two modes:
// - folders: `fake` and `real` image folders compared as they are;
// - model: `n` images (seeds 0..n-1) generated per ScaleInv factor at scale x the model's
//   training size (x = 0, vertically centred), resized bilinearly to the training size, against
//   the real images centre-cropped and resized to it.
struct EvalRequest {
    std::string model;   // model mode: weights (.safetensors)
    std::string fake;    // folder mode: generated images
    std::string real;    // real images (.png/.jpg/.jpeg directly in the folder); required
    std::string floor;   // optional: training photos, sampled as `real`, for the floor row
    // swd, fid, kid, fd-mnv2, kd-mnv2, fd-incv3m5, kd-incv3m5, seam (seam: model mode)
    std::vector<std::string> metrics = {"swd"};
    std::vector<int64_t> scales = {1};           // ScaleInv factors (model mode)
    // Generated samples per scale (model mode), fake images and floor crops; 0 = as many as the
    // real set holds.
    int64_t n = 0;
    int64_t size = 0;     // folder mode: 0 = every image must have one size; > 0 = crop to
                          // size x size (as below, or the centred square with crops_per_image 0)
    // Random crops per real photo at the model's scale (docs/evaluation.md); 0 = one centred
    // square per photo, resized.
    int64_t crops_per_image = 64;
    double max_scale = 1.5;     // crops: short side scaled by U(1, max_scale), as igan train
    uint64_t sample_seed = 0;   // crops, generated seeds (sample_seed * 2^32 + i), bootstrap
    int64_t bootstrap = 20;     // draws for each metric's spread (0 = none)
    uint64_t random_seed = 1;   // model mode: the random-model row, as `igan init --seed`
    std::string inception;  // pytorch-fid InceptionV3 weights as safetensors (fid, kid)
    // MobileNetV2 feature weights for fd-mnv2 and kd-mnv2 (docs/features.md)
    std::string features = "data-cache/features/mobilenetv2.safetensors";
    // InceptionV3 (input to mixed5) feature weights for fd-incv3m5 and kd-incv3m5
    std::string incv3_features = "data-cache/features/inceptionv3-mixed5.safetensors";
    std::string device = "cpu";
    std::string precision = "fp32";  // of the model's convolutions in its renders (docs/gpu.md)
    std::string config_override;  // as Engine's, for weight files without igan metadata
    int64_t tile = 0;             // render tile (0 = 256)
    int64_t seam_tile = 0;        // seam score tile (0 = 4 x the model's upscale factor)
    int64_t kid_subsets = 100, kid_subset_size = 1000;
};
std::vector<std::string> eval_metric_names();
// Checks a request without touching files; throws UsageError.
void validate_eval_request(const EvalRequest& request);
// Runs the evaluation and returns one JSON object: rows for the model (or the fake folder), a
// random model (model mode) and the floor (with `floor`); the top-level "swd" is the model's
// first scale. Progress counts training-size images read or generated (a sample at scale s
// counts s^2) and set comparisons.
// Bad folders (missing, empty, unreadable, mixed sizes) and corrupt images (named) throw
// UsageError.
std::string run_eval(const EvalRequest& request, const ProgressFn& progress = {});

}  // namespace igan
