// Diversity loss against the original's formula (models/infinitygan_generator.py,
// StructureSynthesizer.diversity_z_loss) re-computed here with explicit loops in double.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/losses.h"

namespace igan {
namespace {

struct Shape {
    int64_t batch, channels, z_size, x_size;
};

// f of two flattened samples, in double.
double pair_f(const float* a, const float* b, int64_t n, DiversityForm form) {
    if (form == DiversityForm::kPaper) {
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += std::abs(double(a[i]) - double(b[i]));
        return sum / double(n);
    }
    double dot = 0, aa = 0, bb = 0;
    for (int64_t i = 0; i < n; ++i) {
        dot += double(a[i]) * b[i];
        aa += double(a[i]) * a[i];
        bb += double(b[i]) * b[i];
    }
    return 1 - std::acos(dot / std::sqrt(aa * bb)) / M_PI;
}

struct Reference {
    double original;        // 1 / (mean_k f(x pair k) / mean_k f(z pair k) + eps)
    double per_pair_ratio;  // mean_k 1 / (f(x pair k) / f(z pair k) + eps), the former igan form
};

Reference reference(const torch::Tensor& z, const torch::Tensor& x, DiversityForm form) {
    const auto zc = z.contiguous(), xc = x.contiguous();
    const int64_t nz = zc.numel() / zc.size(0), nx = xc.numel() / xc.size(0);
    const float* pz = zc.data_ptr<float>();
    const float* px = xc.data_ptr<float>();
    const int64_t pairs = zc.size(0) / 2;
    double z_sum = 0, x_sum = 0, ratio_sum = 0;
    for (int64_t k = 0; k < pairs; ++k) {
        const double zd = pair_f(pz + 2 * k * nz, pz + (2 * k + 1) * nz, nz, form);
        const double xd = pair_f(px + 2 * k * nx, px + (2 * k + 1) * nx, nx, form);
        z_sum += zd;
        x_sum += xd;
        ratio_sum += 1 / (xd / zd + 1e-5);
    }
    return {1 / ((x_sum / pairs) / (z_sum / pairs) + 1e-5), ratio_sum / pairs};
}

// Pairs whose second sample is c_k * first + s_k * noise with c_k, s_k varying over pairs, so
// that the per-pair distances (and the two reductions) differ. An odd last sample is extreme:
// the loss must ignore it.
torch::Tensor paired_batch(int64_t batch, int64_t channels, int64_t size, double c0, double s0) {
    auto t = torch::randn({batch, channels, size, size});
    for (int64_t i = 1; i < batch; i += 2) {
        const double k = double(i / 2);
        const double c = c0 - 0.6 * k, s = s0 * (1 + 1.5 * k);
        t[i] = c * t[i - 1] + s * t[i];
    }
    if (batch % 2 == 1) t[batch - 1] *= 1e3;
    return t;
}

TEST(DiversityLoss, EqualsOriginalFormulaOnManyShapes) {
    // Golden geometry (batch 4, 32 channels, 35 -> 11), odd batches, other widths and sizes.
    const std::vector<Shape> shapes = {{4, 32, 35, 11}, {2, 8, 35, 11},  {3, 32, 35, 11},
                                       {5, 4, 23, 5},   {6, 16, 29, 17}, {7, 1, 13, 3},
                                       {8, 64, 17, 5}};
    constexpr double kRtol = 1e-6;  // float32 sums over up to 39k elements vs double (seen: 1.4e-7)
    torch::manual_seed(11);
    for (const auto form : {DiversityForm::kAngular, DiversityForm::kPaper}) {
        for (const auto& sh : shapes) {
            const auto z = paired_batch(sh.batch, sh.channels, sh.z_size, 0.3, 1.0);
            const auto x = paired_batch(sh.batch, sh.channels, sh.x_size, 0.8, 0.4);
            const auto ref = reference(z, x, form);
            const double got = diversity_loss(z, x, form).item<double>();
            const auto where = ::testing::Message()
                               << (form == DiversityForm::kPaper ? "paper" : "angular") << " batch "
                               << sh.batch << " channels " << sh.channels << " z " << sh.z_size
                               << " x " << sh.x_size;
            EXPECT_NEAR(got, ref.original, kRtol * std::abs(ref.original)) << where;
            // With two or more pairs, the case must tell the original from a mean of ratios.
            if (sh.batch >= 4) {
                EXPECT_GT(std::abs(ref.per_pair_ratio - ref.original),
                          100 * kRtol * std::abs(ref.original))
                    << where;
            }
        }
    }
}

TEST(DiversityLoss, GradientReachesTheStructureLatent) {
    torch::manual_seed(12);
    const auto z = paired_batch(4, 8, 23, 0.3, 1.0);
    const auto x = paired_batch(4, 8, 5, 0.8, 0.4).requires_grad_();
    for (const auto form : {DiversityForm::kAngular, DiversityForm::kPaper}) {
        auto g = torch::autograd::grad({diversity_loss(z, x, form)}, {x})[0];
        EXPECT_TRUE(g.isfinite().all().item<bool>());
        EXPECT_GT(g.abs().sum().item<double>(), 0);
    }
}

TEST(DiversityLoss, NeedsAPair) {
    EXPECT_THROW(diversity_loss(torch::randn({1, 4, 9, 9}), torch::randn({1, 4, 3, 3}),
                                DiversityForm::kAngular),
                 c10::Error);
}

}  // namespace
}  // namespace igan
