#include "eval/fid.h"

#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/rng.h"

namespace igan {

GaussianStats gaussian_stats(const torch::Tensor& features) {
    TORCH_CHECK(features.dim() == 2, "gaussian_stats: expected (N, D)");
    if (features.size(0) < 2) throw Error("FID needs at least 2 images per set");
    const auto x = features.to(torch::kCPU, torch::kDouble);
    GaussianStats s;
    s.count = x.size(0);
    s.mean = x.mean(0);
    const auto centred = x - s.mean;
    s.cov = centred.t().matmul(centred) / double(s.count - 1);
    return s;
}

torch::Tensor sqrtm_psd(const torch::Tensor& s) {
    const auto sym = (s.to(torch::kDouble) + s.to(torch::kDouble).t()) * 0.5;
    const auto [eigenvalues, v] = torch::linalg_eigh(sym);
    return (v * eigenvalues.clamp_min(0).sqrt().unsqueeze(0)).matmul(v.t());
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
    TORCH_CHECK(a.mean.sizes() == b.mean.sizes(), "frechet_distance: feature sizes differ");
    const auto s1 = a.cov.to(torch::kDouble), s2 = b.cov.to(torch::kDouble);
    const auto r1 = sqrtm_psd(s1);
    auto m = r1.matmul(s2).matmul(r1);
    m = (m + m.t()) * 0.5;
    const auto eig = torch::linalg_eigvalsh(m);
    const double tr_sqrt = eig.clamp_min(0).sqrt().sum().item<double>();
    const double mean_term =
        (a.mean.to(torch::kDouble) - b.mean.to(torch::kDouble)).pow(2).sum().item<double>();
    return mean_term + s1.trace().item<double>() + s2.trace().item<double>() - 2.0 * tr_sqrt;
}

namespace {

double unbiased_mmd2(const torch::Tensor& x, const torch::Tensor& y) {
    const double d = double(x.size(1));
    const int64_t m = x.size(0);
    auto kernel = [&](const torch::Tensor& p, const torch::Tensor& q) {
        return (p.matmul(q.t()) / d + 1).pow(3);
    };
    const auto kxx = kernel(x, x), kyy = kernel(y, y), kxy = kernel(x, y);
    const double sxx = (kxx.sum() - kxx.diagonal().sum()).item<double>();
    const double syy = (kyy.sum() - kyy.diagonal().sum()).item<double>();
    const double sxy = kxy.sum().item<double>();
    return (sxx + syy) / double(m * (m - 1)) - 2.0 * sxy / double(m * m);
}

}  // namespace

KidResult kernel_inception_distance(const torch::Tensor& a, const torch::Tensor& b, int64_t subsets,
                                    int64_t subset_size, uint64_t seed) {
    TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1),
                "kernel_inception_distance: expected (N, D) and (M, D)");
    const auto x = a.to(torch::kCPU, torch::kDouble), y = b.to(torch::kCPU, torch::kDouble);
    const int64_t m = std::min({subset_size, x.size(0), y.size(0)});
    if (m < 2) throw Error("KID needs at least 2 images per set");
    if (subsets < 1) throw Error("KID needs at least one subset");
    std::mt19937_64 rng(splitmix64(seed));
    auto draw = [&](int64_t n) {
        std::vector<int64_t> idx(static_cast<size_t>(n));
        std::iota(idx.begin(), idx.end(), 0);
        // Partial Fisher-Yates with raw 64-bit draws: the same on every standard library.
        for (int64_t i = 0; i < m; ++i) {
            const int64_t j = i + int64_t(rng() % uint64_t(n - i));
            std::swap(idx[size_t(i)], idx[size_t(j)]);
        }
        idx.resize(static_cast<size_t>(m));
        return torch::tensor(idx, torch::kLong);
    };
    std::vector<double> values;
    for (int64_t s = 0; s < subsets; ++s)
        values.push_back(
            unbiased_mmd2(x.index_select(0, draw(x.size(0))), y.index_select(0, draw(y.size(0)))));
    KidResult r;
    r.subsets = subsets;
    r.subset_size = m;
    r.mean = std::accumulate(values.begin(), values.end(), 0.0) / double(values.size());
    double var = 0;
    for (double v : values) var += (v - r.mean) * (v - r.mean);
    r.std = std::sqrt(var / double(values.size()));
    return r;
}

}  // namespace igan
