#pragma once
// Augmentation of the discriminator's inputs for small datasets (a few dozen photos overfit D):
// - DiffAugment (Zhao et al. 2020, policy colour, translation, cutout), always on;
// - adaptive augmentation (ADA, Karras et al. 2020, the "bgc" pipeline less rotations, which
//   would turn skies sideways), each transform applied with probability p, p steered by the
//   overfitting signal r_t = E[sign(D(real))] toward a target.
// Every op is a differentiable function of the image, so G's gradient passes through; reals and
// fakes go through the same function with the same p. Vertical translations shift the
// vertical-position label with the content, so D's position head stays truthful.
#include <torch/torch.h>

#include <algorithm>
#include <string>

namespace igan {

enum class AugmentMode { kNone, kDiffAug, kAda };
AugmentMode parse_augment_mode(const std::string& name);  // none | diffaug | ada; else UsageError
std::string augment_mode_name(AugmentMode mode);

struct AugmentBatch {
    torch::Tensor images;  // (B, 3, P, P) in [-1, 1]
    torch::Tensor labels;  // (B, K); column 0 is the vertical position in [-1, 1]
};

// The parameters of one global batch, drawn at once so that any slice of it (a data-parallel
// rank's rows) gets the same transforms as in a single process.
struct AugmentParams {
    torch::Tensor flip;         // (N,) bool
    torch::Tensor shift;        // (N, 2) integer translation in pixels (x, y)
    torch::Tensor scale;        // (N,) isotropic scale about the centre
    torch::Tensor brightness;   // (N,) added
    torch::Tensor contrast;     // (N,) around the image mean
    torch::Tensor saturation;   // (N,) around the per-pixel grey
    torch::Tensor cutout;       // (N, 2) centre of the cut square in [0, 1) (DiffAugment only)
    bool zero_padding = false;  // DiffAugment pads with zeros, ADA reflects
    bool any_geometric = false;  // over the global batch, so every rank takes the same path
    bool any_colour = false;

    AugmentParams slice(int64_t begin, int64_t end) const;
};

AugmentParams draw_augment_params(AugmentMode mode, double p, int64_t patch_size, int64_t n,
                                  at::Generator& gen);

// `label_span` is the distance in pixels that the label's [-1, 1] spans (full - patch size).
AugmentBatch apply_augment(const AugmentBatch& in, const AugmentParams& params, double label_span);

// ADA's controller of p. Reals' logit signs accumulate between updates; every `interval` steps
// p moves by sign(r_t - target) * images / (kimg * 1000), clamped to [0, 1].
struct AdaState {
    double p = 0, rt = 0;
    double sign_sum = 0, sign_count = 0;  // since the last update
};

struct AdaOptions {
    double target = 0.6;
    double kimg = 100;  // thousands of images for p to go from 0 to 1
    int interval = 4;   // steps between updates
};

void ada_accumulate(AdaState& state, const torch::Tensor& real_logits);
// `global_signs` turns this process's (sum, count) into the global ones (identity for one
// process); called after the step numbered `step` (0-based) with `images_per_step` globally.
template <typename Reduce>
void ada_maybe_update(AdaState& state, const AdaOptions& o, int64_t step, int64_t images_per_step,
                      Reduce&& global_signs) {
    if ((step + 1) % o.interval != 0) return;
    auto [sum, count] = global_signs(state.sign_sum, state.sign_count);
    state.sign_sum = state.sign_count = 0;
    if (count <= 0) return;
    state.rt = sum / count;
    const double delta = double(images_per_step * o.interval) / (o.kimg * 1000.0);
    state.p += delta * double((state.rt > o.target) - (state.rt < o.target));
    state.p = std::min(1.0, std::max(0.0, state.p));
}

}  // namespace igan
