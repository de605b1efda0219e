#include "features/perceptual.h"

namespace igan {

torch::Tensor perceptual_distance(MobileNetV2Features net, const torch::Tensor& a,
                                  const torch::Tensor& b) {
    TORCH_CHECK(a.sizes() == b.sizes(), "perceptual_distance: images differ in shape");
    const int64_t n = a.size(0);
    // One pass over both images keeps the batch large for the convolutions.
    const auto features = net->forward(torch::cat({a, b}));
    auto total = torch::zeros({n}, a.options());
    for (const auto& f : features) {
        // LPIPS' normalisation: x / (|x| + eps) across channels; eps keeps all-zero (ReLU-dead)
        // positions finite.
        const auto unit = f / (f.norm(2, 1, true) + 1e-10);
        total = total + (unit.slice(0, 0, n) - unit.slice(0, n)).pow(2).sum(1).mean({1, 2});
    }
    return total / double(features.size());
}

}  // namespace igan
