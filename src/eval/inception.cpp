#include "eval/inception.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "model/state.h"

namespace igan {

namespace F = torch::nn::functional;

namespace {

// TF average pooling: the padded zeros do not count (FIDInceptionA/C/E_1).
torch::Tensor avg_pool_3x3(const torch::Tensor& x) {
    return F::avg_pool2d(x,
                         F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
}

torch::Tensor max_pool(const torch::Tensor& x, int64_t stride, int64_t padding = 0) {
    return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(stride).padding(padding));
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

BasicConv2dImpl::BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel,
                                 int64_t stride, torch::ExpandingArray<2> padding)
    : conv(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                         .stride(stride)
                                                         .padding(padding)
                                                         .bias(false)))),
      bn(register_module("bn",
                         torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(0.001)))) {}

torch::Tensor BasicConv2dImpl::forward(const torch::Tensor& x) { return torch::relu(bn(conv(x))); }

// Braced kernel sizes cannot pass through ModuleHolder's forwarding constructor: build the Impl.
#define IGAN_BRANCH(name, ...) \
    name(register_module(      \
        #name, BasicConv2d(std::shared_ptr<BasicConv2dImpl>(new BasicConv2dImpl(__VA_ARGS__)))))

InceptionAImpl::InceptionAImpl(int64_t in, int64_t pool_features)
    : IGAN_BRANCH(branch1x1, in, 64, 1),
      IGAN_BRANCH(branch5x5_1, in, 48, 1),
      IGAN_BRANCH(branch5x5_2, 48, 64, 5, 1, 2),
      IGAN_BRANCH(branch3x3dbl_1, in, 64, 1),
      IGAN_BRANCH(branch3x3dbl_2, 64, 96, 3, 1, 1),
      IGAN_BRANCH(branch3x3dbl_3, 96, 96, 3, 1, 1),
      IGAN_BRANCH(branch_pool, in, pool_features, 1) {}

torch::Tensor InceptionAImpl::forward(const torch::Tensor& x) {
    return torch::cat(
        {branch1x1(x), branch5x5_2(branch5x5_1(x)),
         branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))), branch_pool(avg_pool_3x3(x))},
        1);
}

InceptionBImpl::InceptionBImpl(int64_t in)
    : IGAN_BRANCH(branch3x3, in, 384, 3, 2),
      IGAN_BRANCH(branch3x3dbl_1, in, 64, 1),
      IGAN_BRANCH(branch3x3dbl_2, 64, 96, 3, 1, 1),
      IGAN_BRANCH(branch3x3dbl_3, 96, 96, 3, 2) {}

torch::Tensor InceptionBImpl::forward(const torch::Tensor& x) {
    return torch::cat(
        {branch3x3(x), branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x))), max_pool(x, 2)}, 1);
}

InceptionCImpl::InceptionCImpl(int64_t in, int64_t c7)
    : IGAN_BRANCH(branch1x1, in, 192, 1),
      IGAN_BRANCH(branch7x7_1, in, c7, 1),
      IGAN_BRANCH(branch7x7_2, c7, c7, {1, 7}, 1, {0, 3}),
      IGAN_BRANCH(branch7x7_3, c7, 192, {7, 1}, 1, {3, 0}),
      IGAN_BRANCH(branch7x7dbl_1, in, c7, 1),
      IGAN_BRANCH(branch7x7dbl_2, c7, c7, {7, 1}, 1, {3, 0}),
      IGAN_BRANCH(branch7x7dbl_3, c7, c7, {1, 7}, 1, {0, 3}),
      IGAN_BRANCH(branch7x7dbl_4, c7, c7, {7, 1}, 1, {3, 0}),
      IGAN_BRANCH(branch7x7dbl_5, c7, 192, {1, 7}, 1, {0, 3}),
      IGAN_BRANCH(branch_pool, in, 192, 1) {}

torch::Tensor InceptionCImpl::forward(const torch::Tensor& x) {
    auto b7 = branch7x7_3(branch7x7_2(branch7x7_1(x)));
    auto b7d = branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(branch7x7dbl_1(x)))));
    return torch::cat({branch1x1(x), b7, b7d, branch_pool(avg_pool_3x3(x))}, 1);
}

InceptionDImpl::InceptionDImpl(int64_t in)
    : IGAN_BRANCH(branch3x3_1, in, 192, 1),
      IGAN_BRANCH(branch3x3_2, 192, 320, 3, 2),
      IGAN_BRANCH(branch7x7x3_1, in, 192, 1),
      IGAN_BRANCH(branch7x7x3_2, 192, 192, {1, 7}, 1, {0, 3}),
      IGAN_BRANCH(branch7x7x3_3, 192, 192, {7, 1}, 1, {3, 0}),
      IGAN_BRANCH(branch7x7x3_4, 192, 192, 3, 2) {}

torch::Tensor InceptionDImpl::forward(const torch::Tensor& x) {
    auto b3 = branch3x3_2(branch3x3_1(x));
    auto b7 = branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x))));
    return torch::cat({b3, b7, max_pool(x, 2)}, 1);
}

InceptionEImpl::InceptionEImpl(int64_t in, bool max_pool_branch)
    : use_max_pool(max_pool_branch),
      IGAN_BRANCH(branch1x1, in, 320, 1),
      IGAN_BRANCH(branch3x3_1, in, 384, 1),
      IGAN_BRANCH(branch3x3_2a, 384, 384, {1, 3}, 1, {0, 1}),
      IGAN_BRANCH(branch3x3_2b, 384, 384, {3, 1}, 1, {1, 0}),
      IGAN_BRANCH(branch3x3dbl_1, in, 448, 1),
      IGAN_BRANCH(branch3x3dbl_2, 448, 384, 3, 1, 1),
      IGAN_BRANCH(branch3x3dbl_3a, 384, 384, {1, 3}, 1, {0, 1}),
      IGAN_BRANCH(branch3x3dbl_3b, 384, 384, {3, 1}, 1, {1, 0}),
      IGAN_BRANCH(branch_pool, in, 192, 1) {}

torch::Tensor InceptionEImpl::forward(const torch::Tensor& x) {
    auto b3 = branch3x3_1(x);
    auto b3d = branch3x3dbl_2(branch3x3dbl_1(x));
    auto pooled = use_max_pool ? max_pool(x, 1, 1) : avg_pool_3x3(x);
    return torch::cat({branch1x1(x), branch3x3_2a(b3), branch3x3_2b(b3), branch3x3dbl_3a(b3d),
                       branch3x3dbl_3b(b3d), branch_pool(pooled)},
                      1);
}

InceptionV3Impl::InceptionV3Impl()
    : IGAN_BRANCH(Conv2d_1a_3x3, 3, 32, 3, 2),
      IGAN_BRANCH(Conv2d_2a_3x3, 32, 32, 3),
      IGAN_BRANCH(Conv2d_2b_3x3, 32, 64, 3, 1, 1),
      IGAN_BRANCH(Conv2d_3b_1x1, 64, 80, 1),
      IGAN_BRANCH(Conv2d_4a_3x3, 80, 192, 3),
      Mixed_5b(register_module("Mixed_5b", InceptionA(192, 32))),
      Mixed_5c(register_module("Mixed_5c", InceptionA(256, 64))),
      Mixed_5d(register_module("Mixed_5d", InceptionA(288, 64))),
      Mixed_6a(register_module("Mixed_6a", InceptionB(288))),
      Mixed_6b(register_module("Mixed_6b", InceptionC(768, 128))),
      Mixed_6c(register_module("Mixed_6c", InceptionC(768, 160))),
      Mixed_6d(register_module("Mixed_6d", InceptionC(768, 160))),
      Mixed_6e(register_module("Mixed_6e", InceptionC(768, 192))),
      Mixed_7a(register_module("Mixed_7a", InceptionD(768))),
      Mixed_7b(register_module("Mixed_7b", InceptionE(1280, false))),
      Mixed_7c(register_module("Mixed_7c", InceptionE(2048, true))) {}

#undef IGAN_BRANCH

torch::Tensor InceptionV3Impl::forward(const torch::Tensor& images, int64_t input_size) {
    TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "InceptionV3: expected (N, 3, H, W)");
    TORCH_CHECK(input_size >= 75, "InceptionV3: input size must be >= 75");
    auto x = F::interpolate(images, F::InterpolateFuncOptions()
                                        .size(std::vector<int64_t>{input_size, input_size})
                                        .mode(torch::kBilinear)
                                        .align_corners(false));
    x = Conv2d_2b_3x3(Conv2d_2a_3x3(Conv2d_1a_3x3(x)));
    x = max_pool(x, 2);
    x = Conv2d_4a_3x3(Conv2d_3b_1x1(x));
    x = max_pool(x, 2);
    x = Mixed_5d(Mixed_5c(Mixed_5b(x)));
    x = Mixed_6e(Mixed_6d(Mixed_6c(Mixed_6b(Mixed_6a(x)))));
    x = Mixed_7c(Mixed_7b(Mixed_7a(x)));
    return x.mean({2, 3});  // adaptive average pool to 1x1
}

InceptionV3 load_inception(const std::string& path, const torch::Device& device) {
    auto net = inception_from_tensors(read_safetensors(path).tensors, path);
    net->to(device);
    return net;
}

InceptionV3 inception_from_tensors(const std::map<std::string, torch::Tensor>& tensors,
                                   const std::string& source) {
    InceptionV3 net;
    // BatchNorm's batch counters may be absent; the classifier (fc) is not needed for features.
    std::map<std::string, torch::Tensor> targets;
    for (const auto& [key, t] : state_dict(*net))
        if (!ends_with(key, ".num_batches_tracked")) targets[key] = t;
    auto stored = specs_of(tensors);
    stored.erase("fc.weight");
    stored.erase("fc.bias");
    for (auto it = stored.begin(); it != stored.end();)
        it = ends_with(it->first, ".num_batches_tracked") ? stored.erase(it) : std::next(it);
    const auto problems = state_problems(targets, stored);
    if (!problems.empty()) {
        std::string msg = source + ": not pytorch-fid InceptionV3 weights (" +
                          std::to_string(problems.size()) + " problems): ";
        for (size_t i = 0; i < problems.size() && i < 20; ++i) msg += (i ? "; " : "") + problems[i];
        if (problems.size() > 20) msg += "; ...";
        msg += " (see docs/evaluation.md for the conversion)";
        throw Error(msg);
    }
    torch::NoGradGuard no_grad;
    for (auto& [key, target] : targets) target.copy_(tensors.at(key));
    net->eval();
    return net;
}

}  // namespace igan
