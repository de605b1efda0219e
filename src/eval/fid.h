#pragma once
// Feature-distribution distances, all in double precision.
// FID (Heusel et al., NeurIPS 2017): ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2).
//   The symmetric form needs only symmetric eigen-decompositions (torch::linalg_eigh), so it is
//   stable where scipy's sqrtm(S1 S2) of a non-symmetric product is not; both equal the sum of
//   the square roots of the eigenvalues of S1 S2.
// KID (Binkowski et al., ICLR 2018): unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3,
//   averaged over random subsets (100 subsets of up to 1000 features, as the reference code).
#include <torch/torch.h>

#include <cstdint>

namespace igan {

struct GaussianStats {
    torch::Tensor mean;  // (D,) double
    torch::Tensor cov;   // (D, D) double, unbiased (N - 1)
    int64_t count = 0;
};

// From (N, D) features, N >= 2.
GaussianStats gaussian_stats(const torch::Tensor& features);

// Principal square root of a symmetric positive semi-definite matrix (negative eigenvalues from
// round-off are clamped to 0).
torch::Tensor sqrtm_psd(const torch::Tensor& s);

double frechet_distance(const GaussianStats& a, const GaussianStats& b);

struct KidResult {
    double mean = 0, std = 0;  // over subsets
    int64_t subsets = 0, subset_size = 0;
};

// Subsets are drawn without replacement from a fixed seed; subset_size is capped at the smaller
// set. Needs at least 2 features per set.
KidResult kernel_inception_distance(const torch::Tensor& a, const torch::Tensor& b,
                                    int64_t subsets = 100, int64_t subset_size = 1000,
                                    uint64_t seed = 0x4B1D);

}  // namespace igan
