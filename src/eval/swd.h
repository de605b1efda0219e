#pragma once
// Sliced Wasserstein distance between two image sets over Laplacian-pyramid patch descriptors,
// the metric of Karras et al., "Progressive Growing of GANs" (ICLR 2018), Appendix D; the
// constants are those of metrics/sliced_wasserstein.py in tkarras/progressive_growing_of_gans.
//
// Per pyramid level: 7x7x3 neighbourhoods at random positions (128 per image), each colour
// channel normalised to zero mean and unit variance over the whole set, then the mean over
// 4 x 128 random unit directions of the 1-D Wasserstein-1 distance between the projected sets,
// times 1e3. Levels run from the full resolution down while the side stays >= 16 px.
//
// Deterministic and independent of image order: the projection directions and the
// neighbourhood positions come from a fixed seed, and every image of both sets is sampled at the
// same positions (ProGAN draws new positions per image). The descriptor multiset is then a
// function of the image multiset (identical sets give exactly 0), and the two sets are compared
// location for location, which lowers the sampling noise of small sets several-fold.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "eval/bootstrap.h"

namespace igan {

struct SwdConfig {
    int64_t nhood_size = 7;          // descriptor side in pixels
    int64_t nhoods_per_image = 128;  // descriptors drawn per image and level
    int64_t min_resolution = 16;     // coarsest level side
    int64_t max_levels = 4;          // 0 = no cap (ProGAN has none; its 128-px sets use 4)
    int64_t dir_repeats = 4;         // batches of projection directions
    int64_t dirs_per_repeat = 128;   // directions per batch (512 projections in all)
    uint64_t seed = 0x5BD1E995ull;   // directions and neighbourhood positions
};

// Sides of the pyramid levels of an h x w image, finest first (each halves, rounding up).
std::vector<std::pair<int64_t, int64_t>> swd_level_sizes(const SwdConfig& config, int64_t h,
                                                         int64_t w);

// Laplacian pyramid of (N, C, H, W) images: `levels` tensors, finest first; all but the last
// are band-pass (x - up(down(x))), the last is the low-pass residual. Filters are the 5-tap
// binomial kernel of cv2.pyrDown/pyrUp with mirror borders.
std::vector<torch::Tensor> laplacian_pyramid(const torch::Tensor& images, int64_t levels);

// Accumulates descriptors of one image set, one image at a time (constant memory per image).
class SwdDescriptors {
public:
    // Every image added must be 3 x h x w.
    SwdDescriptors(const SwdConfig& config, int64_t h, int64_t w);
    void add(const torch::Tensor& image);  // (3, h, w) float, any value range
    int64_t images() const { return images_; }
    int64_t levels() const { return int64_t(levels_.size()); }
    int64_t height() const { return h_; }
    int64_t width() const { return w_; }
    const std::vector<std::pair<int64_t, int64_t>>& level_sizes() const { return sizes_; }
    const SwdConfig& config() const { return config_; }
    // (count, 3 * nhood^2) per level, channel-normalised over the set.
    std::vector<torch::Tensor> finalize() const;

private:
    SwdConfig config_;
    int64_t h_, w_;
    std::vector<std::pair<int64_t, int64_t>> sizes_;
    std::vector<std::vector<std::pair<int64_t, int64_t>>> positions_;  // per level: (y, x)
    std::vector<std::vector<torch::Tensor>> levels_;  // per level, per image (n, 3, k, k)
    int64_t images_ = 0;
};

// Mean over directions of the 1-D Wasserstein-1 distance between the projections of the rows
// of a (n, d) and b (m, d); exact for n != m too (quantile functions compared on [0, 1]).
double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, const SwdConfig& config);

struct SwdResult {
    std::vector<int64_t> resolutions;  // the shorter side of each level, finest first
    std::vector<double> levels;        // SWD x 1e3 per level
    double mean = 0;                   // their average: the reported number
};

// Throws igan::Error when the sets differ in image size or either is empty.
SwdResult swd(const SwdDescriptors& a, const SwdDescriptors& b);

// SWD of paired bootstrap draws of the two sets' images: result[i] for (draws_a[i], draws_b[i]),
// each draw counting the set's images in the order they were added. Each set keeps the channel
// normalisation of its full set, so a draw changes only which images' descriptors enter the
// distance; draws of all ones give swd(a, b) up to float round-off (projections are float
// here). The projections are sorted once for every draw: the 1-D distance is the integral of
// |F_a - F_b| over the merged sorted projections, each descriptor weighted by its image's
// count. `threads` workers share the directions; the numbers do not depend on it.
std::vector<SwdResult> swd_draws(const SwdDescriptors& a, const SwdDescriptors& b,
                                 const std::vector<Draw>& draws_a, const std::vector<Draw>& draws_b,
                                 int threads = 1);

}  // namespace igan
