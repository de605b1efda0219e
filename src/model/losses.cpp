#include "model/losses.h"

#include <cmath>

namespace igan {

namespace F = torch::nn::functional;

torch::Tensor g_nonsaturating_loss(const torch::Tensor& fake_logit) {
    return F::softplus(-fake_logit).mean();
}

torch::Tensor d_logistic_loss(const torch::Tensor& real_logit, const torch::Tensor& fake_logit) {
    return F::softplus(-real_logit).mean() + F::softplus(fake_logit).mean();
}

torch::Tensor coord_ac_loss(const torch::Tensor& pred, const torch::Tensor& target) {
    return (pred.select(1, 0) - target.select(1, 0)).abs().mean();
}

namespace {

// f averaged over the pairs (a_k, b_k), rows of (pairs, n) tensors.
torch::Tensor mean_pair_distance(const torch::Tensor& a, const torch::Tensor& b,
                                 DiversityForm form) {
    if (form == DiversityForm::kPaper) return (a - b).abs().mean();
    // The original's angular_similarity: dot / (|a| |b|) without eps. The clamp only turns the
    // NaN of a rounding past +-1 into the boundary value.
    auto cos = (a * b).sum(1) / (a.norm(2, 1) * b.norm(2, 1));
    return (1 - torch::acos(cos.clamp(-1, 1)) / M_PI).mean();
}

}  // namespace

// The original (models/infinitygan_generator.py, StructureSynthesizer._diversity_latent_dist and
// _diversity_image_dist) takes .mean() over the pairs inside each distance, then one ratio; a
// mean of per-pair ratios differs as soon as the pairs differ (5e-4 relative on a reference case).
DiversityDistances diversity_distances(const torch::Tensor& local_latent,
                                       const torch::Tensor& structure, DiversityForm form) {
    const int64_t pairs = local_latent.size(0) / 2;
    TORCH_CHECK(pairs > 0, "the diversity loss needs at least two samples");
    auto z = local_latent.narrow(0, 0, 2 * pairs).flatten(1).view({pairs, 2, -1});
    auto x = structure.narrow(0, 0, 2 * pairs).flatten(1).view({pairs, 2, -1});
    return {mean_pair_distance(z.select(1, 0), z.select(1, 1), form),
            mean_pair_distance(x.select(1, 0), x.select(1, 1), form)};
}

torch::Tensor diversity_ratio(const DiversityDistances& d) { return 1 / (d.x / d.z + 1e-5); }

torch::Tensor diversity_loss(const torch::Tensor& local_latent, const torch::Tensor& structure,
                             DiversityForm form) {
    return diversity_ratio(diversity_distances(local_latent, structure, form));
}

}  // namespace igan
