#include "eval/mnv2_features.h"

namespace igan {

namespace F = torch::nn::functional;

torch::Tensor mnv2_descriptors(MobileNetV2Features net, const torch::Tensor& images,
                               int64_t input_size) {
    TORCH_CHECK(images.dim() == 4 && images.size(1) == 3,
                "mnv2_descriptors: expected (N, 3, H, W)");
    torch::NoGradGuard no_grad;
    const auto device = net->stem->weight.device();
    auto x = images.to(device);
    if (x.size(2) != input_size || x.size(3) != input_size)
        x = F::interpolate(x, F::InterpolateFuncOptions()
                                  .size(std::vector<int64_t>{input_size, input_size})
                                  .mode(torch::kBilinear)
                                  .align_corners(false));
    std::vector<torch::Tensor> pooled;
    for (const auto& f : net->forward(x)) pooled.push_back(f.mean({2, 3}));
    return torch::cat(pooled, 1).cpu();
}

}  // namespace igan
