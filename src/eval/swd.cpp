#include "eval/swd.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "core/rng.h"

namespace igan {

namespace {

constexpr uint64_t kDirectionStream = 0xE7A15D00ull;  // away from the canvas streams

// The 5-tap binomial filter [1 4 6 4 1]/16 in both directions, one copy per channel.
torch::Tensor binomial_blur(const torch::Tensor& x, double gain) {
    const int64_t c = x.size(1);
    auto k1 = torch::tensor({1.0, 4.0, 6.0, 4.0, 1.0}, x.options()) / 16.0;
    auto k = (torch::outer(k1, k1) * gain).view({1, 1, 5, 5}).expand({c, 1, 5, 5}).contiguous();
    namespace F = torch::nn::functional;
    auto padded = F::pad(x, F::PadFuncOptions({2, 2, 2, 2}).mode(torch::kReflect));
    return F::conv2d(padded, k, F::Conv2dFuncOptions().groups(c));
}

torch::Tensor pyr_down(const torch::Tensor& x) {
    using torch::indexing::Slice;
    return binomial_blur(x, 1.0).index(
        {Slice(), Slice(), Slice(0, torch::indexing::None, 2), Slice(0, torch::indexing::None, 2)});
}

// Zero insertion, blur with gain 4, then crop to h x w (the finer level's size).
torch::Tensor pyr_up(const torch::Tensor& x, int64_t h, int64_t w) {
    using torch::indexing::Slice;
    auto up = torch::zeros({x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)}, x.options());
    up.index_put_(
        {Slice(), Slice(), Slice(0, torch::indexing::None, 2), Slice(0, torch::indexing::None, 2)},
        x);
    return binomial_blur(up, 4.0).narrow(2, 0, h).narrow(3, 0, w);
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> swd_level_sizes(const SwdConfig& c, int64_t h, int64_t w) {
    std::vector<std::pair<int64_t, int64_t>> sizes;
    while (std::min(h, w) >= c.min_resolution &&
           (c.max_levels <= 0 || int64_t(sizes.size()) < c.max_levels)) {
        sizes.emplace_back(h, w);
        h = (h + 1) / 2;
        w = (w + 1) / 2;
    }
    return sizes;
}

std::vector<torch::Tensor> laplacian_pyramid(const torch::Tensor& images, int64_t levels) {
    TORCH_CHECK(images.dim() == 4, "laplacian_pyramid: expected (N, C, H, W)");
    std::vector<torch::Tensor> pyramid{images.to(torch::kFloat)};
    for (int64_t i = 1; i < levels; ++i) {
        auto coarse = pyr_down(pyramid.back());
        pyramid.back() =
            pyramid.back() - pyr_up(coarse, pyramid.back().size(2), pyramid.back().size(3));
        pyramid.push_back(coarse);
    }
    return pyramid;
}

SwdDescriptors::SwdDescriptors(const SwdConfig& config, int64_t h, int64_t w)
    : config_(config), h_(h), w_(w), sizes_(swd_level_sizes(config, h, w)) {
    if (sizes_.empty())
        throw Error("SWD needs images of at least " + std::to_string(config.min_resolution) +
                    " px per side, got " + std::to_string(w) + "x" + std::to_string(h));
    if (config.nhood_size > config.min_resolution || config.nhood_size < 1)
        throw Error("SWD: neighbourhood size must be in [1, min_resolution]");
    levels_.resize(sizes_.size());
    // One position set per level, shared by every image of both sets (a fixed random design).
    const int64_t k = config.nhood_size;
    for (size_t l = 0; l < sizes_.size(); ++l) {
        // Raw 64-bit draws reduced modulo the range: identical on every standard library.
        std::mt19937_64 rng(splitmix64(config.seed + l));
        const uint64_t ny = uint64_t(sizes_[l].first - k + 1),
                       nx = uint64_t(sizes_[l].second - k + 1);
        std::vector<std::pair<int64_t, int64_t>> pos;
        for (int64_t i = 0; i < config.nhoods_per_image; ++i) {
            const int64_t y = int64_t(rng() % ny);
            pos.emplace_back(y, int64_t(rng() % nx));
        }
        positions_.push_back(std::move(pos));
    }
}

void SwdDescriptors::add(const torch::Tensor& image) {
    TORCH_CHECK(
        image.dim() == 3 && image.size(0) == 3 && image.size(1) == h_ && image.size(2) == w_,
        "SwdDescriptors::add: expected (3, ", h_, ", ", w_, "), got ", image.sizes());
    torch::NoGradGuard no_grad;
    const auto pyramid =
        laplacian_pyramid(image.to(torch::kCPU, torch::kFloat).unsqueeze(0), levels());
    const int64_t k = config_.nhood_size;
    for (size_t l = 0; l < pyramid.size(); ++l) {
        const auto level = pyramid[l][0];
        std::vector<torch::Tensor> nhoods;
        nhoods.reserve(positions_[l].size());
        for (const auto& [y, x] : positions_[l])
            nhoods.push_back(level.narrow(1, y, k).narrow(2, x, k));
        levels_[l].push_back(torch::stack(nhoods));
    }
    ++images_;
}

std::vector<torch::Tensor> SwdDescriptors::finalize() const {
    std::vector<torch::Tensor> out;
    for (const auto& per_image : levels_) {
        if (per_image.empty()) throw Error("SWD: no images in the set");
        auto d = torch::cat(per_image).to(torch::kDouble);  // (n, 3, k, k)
        const auto mean = d.mean({0, 2, 3}, true);
        const auto std = (d - mean).pow(2).mean({0, 2, 3}, true).sqrt().clamp_min(1e-12);
        out.push_back(((d - mean) / std).reshape({d.size(0), -1}));
    }
    return out;
}

double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, const SwdConfig& c) {
    TORCH_CHECK(
        a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1) && a.size(0) > 0 && b.size(0) > 0,
        "sliced_wasserstein: expected (n, d) and (m, d)");
    torch::NoGradGuard no_grad;
    const int64_t d = a.size(1), total = c.dir_repeats * c.dirs_per_repeat;
    auto dirs = torch::empty({d, total});
    fill_normal_field(dirs.data_ptr<float>(), c.seed, kDirectionStream, 1, 0, 0, d, total);
    auto dirs64 = dirs.to(torch::kDouble);
    dirs64 = dirs64 / dirs64.norm(2, 0, true);
    // (directions, points), one contiguous row per direction.
    const auto pa = dirs64.t().matmul(a.to(torch::kCPU, torch::kDouble).t()).contiguous();
    const auto pb = dirs64.t().matmul(b.to(torch::kCPU, torch::kDouble).t()).contiguous();
    const int64_t n = a.size(0), m = b.size(0);
    std::vector<double> ra(static_cast<size_t>(n)), rb(static_cast<size_t>(m));
    double sum = 0;
    for (int64_t k = 0; k < total; ++k) {
        const double* pa_k = pa.data_ptr<double>() + k * n;
        const double* pb_k = pb.data_ptr<double>() + k * m;
        ra.assign(pa_k, pa_k + n);
        rb.assign(pb_k, pb_k + m);
        std::sort(ra.begin(), ra.end());
        std::sort(rb.begin(), rb.end());
        // W1 = integral over t in [0, 1] of |Fa^-1(t) - Fb^-1(t)|: both quantile functions are
        // steps (ra[i] on [i/n, (i+1)/n)), so walk the merged breakpoints. Equal counts reduce
        // to the mean |ra[i] - rb[i]| of ProGAN.
        int64_t i = 0, j = 0;
        double t = 0, w = 0;
        while (i < n && j < m) {
            const int64_t lhs = (i + 1) * m, rhs = (j + 1) * n;  // compares (i+1)/n, (j+1)/m
            const double next = lhs <= rhs ? double(i + 1) / double(n) : double(j + 1) / double(m);
            w += (next - t) * std::abs(ra[size_t(i)] - rb[size_t(j)]);
            t = next;
            if (lhs <= rhs) ++i;
            if (rhs <= lhs) ++j;
        }
        sum += w;
    }
    return sum / double(total);
}

SwdResult swd(const SwdDescriptors& a, const SwdDescriptors& b) {
    if (a.images() == 0 || b.images() == 0) throw Error("SWD: an image set is empty");
    if (a.height() != b.height() || a.width() != b.width())
        throw Error("SWD: the two sets differ in image size (" + std::to_string(a.width()) + "x" +
                    std::to_string(a.height()) + " vs " + std::to_string(b.width()) + "x" +
                    std::to_string(b.height()) + ")");
    const auto da = a.finalize(), db = b.finalize();
    SwdResult r;
    for (size_t l = 0; l < da.size(); ++l) {
        r.levels.push_back(1e3 * sliced_wasserstein(da[l], db[l], a.config()));
        const auto& [h, w] = a.level_sizes()[l];
        r.resolutions.push_back(std::min(h, w));
    }
    double sum = 0;
    for (double v : r.levels) sum += v;
    r.mean = sum / double(r.levels.size());
    return r;
}

}  // namespace igan
