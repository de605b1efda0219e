#pragma once
// InfinityGAN losses (models/losses.py and the structure synthesizer's diversity loss of
// hubert0527/infinityGAN @ a9b45dd).
#include <torch/torch.h>

namespace igan {

// Non-saturating logistic losses.
torch::Tensor g_nonsaturating_loss(const torch::Tensor& fake_logit);
torch::Tensor d_logistic_loss(const torch::Tensor& real_logit, const torch::Tensor& fake_logit);
// Vertical-position regression: mean |pred[:, 0] - target[:, 0]|.
torch::Tensor coord_ac_loss(const torch::Tensor& pred, const torch::Tensor& target);

enum class DiversityForm {
    kPaper,    // L1 distances mean|z1 - z2|, mean|x1 - x2| (mode seeking, as in the paper)
    kAngular,  // the original's configs (diversity_angular): 1 - acos(cos_sim)/pi
};
// f over consecutive pairs (0,1), (2,3), ..., averaged over the pairs; an odd last sample is
// ignored. z from the local latents, x from the structure latents.
struct DiversityDistances {
    torch::Tensor z, x;
};
DiversityDistances diversity_distances(const torch::Tensor& local_latent,
                                       const torch::Tensor& structure, DiversityForm form);
// 1 / (x / z + 1e-5). As the original, one ratio of the pair-averaged distances (not a mean of
// per-pair ratios).
torch::Tensor diversity_ratio(const DiversityDistances& d);
// diversity_ratio(diversity_distances(...)).
torch::Tensor diversity_loss(const torch::Tensor& local_latent, const torch::Tensor& structure,
                             DiversityForm form);

}  // namespace igan
