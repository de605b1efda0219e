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

torch::Tensor pair_distance(const torch::Tensor& a, const torch::Tensor& b, DiversityForm form) {
    if (form == DiversityForm::kPaper) return (a - b).abs().mean(1);
    auto cos = F::cosine_similarity(a, b, F::CosineSimilarityFuncOptions().dim(1).eps(1e-8));
    return 1 - torch::acos(cos.clamp(-1, 1)) / M_PI;
}

}  // namespace

torch::Tensor diversity_loss(const torch::Tensor& local_latent, const torch::Tensor& structure,
                             DiversityForm form) {
    const int64_t pairs = local_latent.size(0) / 2;
    TORCH_CHECK(pairs > 0, "the diversity loss needs at least two samples");
    auto z = local_latent.narrow(0, 0, 2 * pairs).flatten(1).view({pairs, 2, -1});
    auto x = structure.narrow(0, 0, 2 * pairs).flatten(1).view({pairs, 2, -1});
    auto z_dist = pair_distance(z.select(1, 0), z.select(1, 1), form);
    auto x_dist = pair_distance(x.select(1, 0), x.select(1, 1), form);
    return (1 / (x_dist / z_dist + 1e-5)).mean();
}

}  // namespace igan
