#include "eval/mnv2_features.h"

#include "eval/images.h"

namespace igan {

torch::Tensor mnv2_descriptors(MobileNetV2Features net, const torch::Tensor& images,
                               int64_t input_size) {
    torch::NoGradGuard no_grad;
    const auto x = resize_square(images.to(net->stem->weight.device()), input_size);
    std::vector<torch::Tensor> pooled;
    for (const auto& f : net->forward(x)) pooled.push_back(f.mean({2, 3}));
    return torch::cat(pooled, 1).cpu();
}

}  // namespace igan
