#include "eval/incv3m5_features.h"

#include "eval/images.h"

namespace igan {

torch::Tensor incv3m5_descriptors(InceptionV3Mixed5 net, const torch::Tensor& images,
                                  int64_t input_size) {
    torch::NoGradGuard no_grad;
    const auto x = resize_square(images.to(net->parameters().front().device()), input_size);
    return net->forward(x).mean({2, 3}).cpu();
}

}  // namespace igan
