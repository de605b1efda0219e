#include "train/augment.h"

#include <cmath>

#include "core/error.h"

namespace igan {

namespace F = torch::nn::functional;

AugmentMode parse_augment_mode(const std::string& name) {
    if (name == "none") return AugmentMode::kNone;
    if (name == "diffaug") return AugmentMode::kDiffAug;
    if (name == "ada") return AugmentMode::kAda;
    throw UsageError("--augment must be none, diffaug or ada, got '" + name + "'");
}

std::string augment_mode_name(AugmentMode mode) {
    switch (mode) {
        case AugmentMode::kDiffAug: return "diffaug";
        case AugmentMode::kAda: return "ada";
        default: return "none";
    }
}

AugmentParams AugmentParams::slice(int64_t begin, int64_t end) const {
    AugmentParams s = *this;
    for (auto* t : {&s.flip, &s.shift, &s.scale, &s.brightness, &s.contrast, &s.saturation, &s.cutout})
        if (t->defined()) *t = t->narrow(0, begin, end - begin);
    return s;
}

AugmentParams draw_augment_params(AugmentMode mode, double p, int64_t patch_size, int64_t n,
                                  at::Generator& gen) {
    AugmentParams a;
    const auto uniform = [&](std::vector<int64_t> shape) { return torch::rand(shape, gen); };
    const auto normal = [&](std::vector<int64_t> shape) { return torch::randn(shape, gen); };
    const int64_t max_shift = patch_size / 8;  // both papers translate by up to 1/8 of the side
    // Every draw happens whatever p is, so the stream (and a resumed run) never depends on p.
    const auto shift = torch::round((uniform({n, 2}) * 2 - 1) * double(max_shift));
    if (mode == AugmentMode::kDiffAug) {
        a.zero_padding = true;
        a.flip = torch::zeros({n}, torch::kBool);
        a.shift = shift;
        a.scale = torch::ones({n});
        a.brightness = uniform({n}) - 0.5;
        a.saturation = uniform({n}) * 2;
        a.contrast = uniform({n}) + 0.5;
        a.cutout = uniform({n, 2});
        a.any_geometric = a.any_colour = true;
        return a;
    }
    // ADA: each transform on with probability p; the "off" value is the identity.
    const auto on = [&] { return uniform({n}) < p; };
    const auto flip_on = on(), flip_coin = uniform({n}) < 0.5;
    const auto shift_on = on();
    const auto scale_on = on();
    const auto log2_scale = normal({n}) * 0.2;
    const auto bright_on = on(), bright = normal({n}) * 0.2;
    const auto contrast_on = on(), log2_contrast = normal({n}) * 0.5;
    const auto sat_on = on(), log2_sat = normal({n}) * 1.0;
    a.flip = flip_on & flip_coin;
    a.shift = shift * shift_on.unsqueeze(1).to(torch::kFloat32);
    a.scale = torch::where(scale_on, torch::exp2(log2_scale), torch::ones({n}));
    a.brightness = torch::where(bright_on, bright, torch::zeros({n}));
    a.contrast = torch::where(contrast_on, torch::exp2(log2_contrast), torch::ones({n}));
    a.saturation = torch::where(sat_on, torch::exp2(log2_sat), torch::ones({n}));
    a.any_geometric = (shift_on | scale_on).any().item<bool>();
    a.any_colour = (bright_on | contrast_on | sat_on).any().item<bool>();
    return a;
}

namespace {

// Content scaled by s about the centre, then moved by (dx, dy) pixels; bilinear, so integer
// shifts at scale 1 move pixels exactly.
torch::Tensor warp(const torch::Tensor& x, const AugmentParams& a) {
    const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    const auto opts = x.options();
    const auto inv_s = (1.0 / a.scale).to(opts);
    const auto tx = a.shift.select(1, 0).to(opts) * (2.0 / double(w));
    const auto ty = a.shift.select(1, 1).to(opts) * (2.0 / double(h));
    const auto zero = torch::zeros({n}, opts);
    const auto theta = torch::stack({torch::stack({inv_s, zero, -tx * inv_s}, 1),
                                     torch::stack({zero, inv_s, -ty * inv_s}, 1)},
                                    1);  // (N, 2, 3): output -> input coordinates
    const auto grid = F::affine_grid(theta, {n, x.size(1), h, w}, /*align_corners=*/false);
    F::GridSampleFuncOptions::padding_mode_t padding = torch::kReflection;
    if (a.zero_padding) padding = torch::kZeros;
    return F::grid_sample(
        x, grid,
        F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(padding).align_corners(false));
}

torch::Tensor cut_out(const torch::Tensor& x, const torch::Tensor& centre) {
    const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
    const auto opts = x.options();
    const auto ys = torch::arange(h, opts).view({1, h, 1});
    const auto xs = torch::arange(w, opts).view({1, 1, w});
    const auto cy = (centre.select(1, 1).to(opts) * double(h)).floor().view({n, 1, 1});
    const auto cx = (centre.select(1, 0).to(opts) * double(w)).floor().view({n, 1, 1});
    const auto keep = ((ys - cy).abs() >= double(h / 4)) | ((xs - cx).abs() >= double(w / 4));
    return x * keep.unsqueeze(1).to(opts);
}

}  // namespace

AugmentBatch apply_augment(const AugmentBatch& in, const AugmentParams& a, double label_span) {
    const auto device = in.images.device();
    const auto opts = in.images.options();
    const auto col = [&](const torch::Tensor& t) { return t.to(device).to(opts).view({-1, 1, 1, 1}); };
    auto x = in.images;
    x = torch::where(a.flip.to(device).view({-1, 1, 1, 1}), x.flip({3}), x);
    auto labels = in.labels;
    if (a.any_geometric) {
        x = warp(x, a);
        // The patch centre now shows content from shift / scale pixels higher up.
        auto dy = (a.shift.select(1, 1) / a.scale).to(labels.options());
        labels = labels.clone();
        labels.select(1, 0).sub_(dy * (2.0 / label_span));
    }
    if (a.any_colour) {
        x = x + col(a.brightness);
        const auto grey = x.mean(1, true);
        x = grey + (x - grey) * col(a.saturation);
        const auto mean = x.mean({1, 2, 3}, true);
        x = mean + (x - mean) * col(a.contrast);
    }
    if (a.cutout.defined()) x = cut_out(x, a.cutout);
    return {x, labels};
}

void ada_accumulate(AdaState& state, const torch::Tensor& real_logits) {
    state.sign_sum += real_logits.detach().sign().sum().item<double>();
    state.sign_count += double(real_logits.numel());
}

}  // namespace igan
