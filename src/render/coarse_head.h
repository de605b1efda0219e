#pragma once
// Fitted coarse heads: a zoomed-out level z = -k of the canvas as a 1x1 linear map of the
// generator's own features at that scale (the texture synthesizer's conv output at a ToRGB with
// its partial sum, or the structure latent z_S), fitted by least squares to the box-filtered
// native render over many seeds and places. The synthesis stops k up layers early, as with the
// partial ToRGB sum, but the map is trained for the level it serves, where the model's ToRGB
// sums were not (docs/serving.md).
#include <torch/torch.h>

#include <functional>
#include <vector>

#include "model/generator.h"
#include "render/canvas.h"

namespace igan {

struct CoarseHead {
    int rgb_index = kStructureLevel;  // its features: z_S, or the conv and partial sum at a ToRGB
    torch::Tensor weight;             // (3, C) float32
    torch::Tensor bias;               // (3)
    // (B, C, h, w) -> (B, 3, h, w) on the features' device.
    torch::Tensor apply(const torch::Tensor& features) const;
};

// Every rgb_index a head can read, finest level first: the ToRGBs before the last, then z_S.
std::vector<int> coarse_sources(const GeneratorConfig& config);
// Its zoom level (< 0) and the channels of its features.
int coarse_level(const GeneratorConfig& config, int rgb_index);
int64_t coarse_channels(const GeneratorConfig& config, int rgb_index);
// The style modulations of the layers that read a head's features, which carry a seed's
// colours: (N, C) each for N styles (N, n_latent, G); coarse_features takes them as (1, C) or
// mixed per pixel, (B, C, h, w). At a ToRGB: that ToRGB's and the next conv's; at z_S: the
// first conv's.
std::vector<torch::Tensor> coarse_modulations(TextureSynthesizerImpl& ts, int rgb_index,
                                              const torch::Tensor& styles);
// What a head reads from one synthesis: the features f (z_S at kStructureLevel, else the output
// of the conv feeding ToRGB rgb_index), f times each modulation, f squared, and at a ToRGB its
// partial sum.
// `ts` holds the texture synthesizer's features by name (TextureSynthesizerImpl::forward).
torch::Tensor coarse_features(const GeneratorConfig& config, int rgb_index,
                              const torch::Tensor& structure, const FeatureMap& ts,
                              const std::vector<torch::Tensor>& modulations);

// Ridge least squares through the normal equations in float64, accumulated sample by sample,
// so a fit over many regions holds only a (C + 1)^2 matrix.
class HeadFit {
public:
    explicit HeadFit(int64_t channels);
    // features (C, h, w) and the target RGB (3, h, w) at the same pixels.
    void add(const torch::Tensor& features, const torch::Tensor& target);
    // Minimises |W f + b - t|^2 + ridge * mean(diag(F^T F)) * |W|^2 over every pixel added.
    CoarseHead solve(int rgb_index, double ridge) const;
    int64_t pixels() const { return pixels_; }

private:
    torch::Tensor xtx_, xty_;
    int64_t pixels_ = 0;
};

struct CoarseFitOptions {
    int64_t samples = 48;   // regions fitted on, one seed each (seed, seed + 1, ...)
    int64_t held_out = 16;  // regions on the seeds after those, measured only
    int64_t side = 32;      // region side in pixels at the coarsest level
    uint64_t seed = 1000;
    // Region centres are uniform within this many native pixels of the horizon row, at random
    // columns: the horizon and both extrapolated bands (sky, ground) a zoomed-out view shows.
    int64_t y_range = 1024;
    double ridge = 1e-4;
    int64_t tile = 256;  // render tile (any value gives the same pixels)
};

struct CoarseLevelReport {
    int level = 0, rgb_index = 0;
    // 8-bit PSNR against the box-filtered native render on the held-out regions: mean, worst.
    double held_out_psnr = 0, held_out_min_psnr = 0;
    double partial_psnr = 0;  // the raw partial ToRGB sum on the held-out regions (0 for z_S)
};

struct CoarseFitResult {
    std::vector<CoarseHead> heads;  // one per coarse_sources entry
    std::vector<CoarseLevelReport> levels;
};

// (done, total) over the samples and held-out regions.
using FitProgressFn = std::function<void(int64_t, int64_t)>;
CoarseFitResult fit_coarse_heads(Generator g, torch::Device device, const CoarseFitOptions& options,
                                 const FitProgressFn& progress = {});

// 8-bit PSNR of two [-1, 1] images as the server quantizes them.
double psnr_8bit(const torch::Tensor& a, const torch::Tensor& b);
// The server's reference for a level: the 8-bit native render (3, h, w), each level pixel the
// rounded mean of its factor x factor block, back in [-1, 1].
torch::Tensor box_reference(const torch::Tensor& native, int64_t factor);

}  // namespace igan
