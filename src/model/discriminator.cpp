#include "model/discriminator.h"

#include <cmath>

namespace igan {

namespace F = torch::nn::functional;

EqualConv2dImpl::EqualConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride_,
                                 int64_t padding_, bool with_bias)
    : stride(stride_), padding(padding_), scale(1.0 / std::sqrt(double(in * kernel * kernel))) {
    weight = register_parameter("weight", torch::randn({out, in, kernel, kernel}));
    if (with_bias) bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor EqualConv2dImpl::forward(const torch::Tensor& x) {
    return F::conv2d(x, weight * scale,
                     F::Conv2dFuncOptions().bias(bias).stride(stride).padding(padding));
}

BlurImpl::BlurImpl(int64_t pad0_, int64_t pad1_) : pad0(pad0_), pad1(pad1_) {
    auto k1 = torch::tensor({1.f, 3.f, 3.f, 1.f});
    auto k = torch::outer(k1, k1);
    kernel = register_buffer("kernel", k / k.sum());
}

torch::Tensor BlurImpl::forward(const torch::Tensor& x) {
    const int64_t c = x.size(1);
    auto padded = F::pad(x, F::PadFuncOptions({pad0, pad1, pad0, pad1}));
    // upfirdn2d correlates with the flipped kernel; it is symmetric, so flip anyway for clarity.
    auto k = kernel.flip({0, 1}).view({1, 1, 4, 4}).expand({c, 1, 4, 4});
    return F::conv2d(padded, k, F::Conv2dFuncOptions().groups(c));
}

namespace {

// ConvLayer of the original: optional blur, EqualConv2d, optional bias + leaky ReLU.
ConvLayer conv_layer(int64_t in, int64_t out, int64_t kernel, bool downsample, bool activate) {
    ConvLayer seq;
    int64_t stride = 1, padding = kernel / 2;
    if (downsample) {
        const int64_t p = (4 - 2) + (kernel - 1);
        seq->push_back(Blur((p + 1) / 2, p / 2));
        stride = 2;
        padding = 0;
    }
    seq->push_back(EqualConv2d(in, out, kernel, stride, padding, false));
    if (activate) seq->push_back(BiasAct(out));
    return seq;
}

ConvLayer equal_linear_pair(int64_t in, int64_t mid, int64_t out) {
    ConvLayer seq;
    seq->push_back(EqualLinear(in, mid, 1.0, 0.0, true));
    seq->push_back(EqualLinear(mid, out, 1.0, 0.0, false));
    return seq;
}

}  // namespace

ResBlockImpl::ResBlockImpl(int64_t in, int64_t out) {
    conv1 = register_module("conv1", conv_layer(in, in, 3, false, true));
    conv2 = register_module("conv2", conv_layer(in, out, 3, true, true));
    skip = register_module("skip", conv_layer(in, out, 1, true, false));
}

torch::Tensor ResBlockImpl::forward(const torch::Tensor& x) {
    return (conv2->forward(conv1->forward(x)) + skip->forward(x)) / std::sqrt(2.0);
}

DiscriminatorImpl::DiscriminatorImpl(const DiscriminatorConfig& c) : config(c) {
    const int log_size = c.log_size();
    convs = torch::nn::Sequential();
    convs->push_back(conv_layer(3, c.channels_at(1 << log_size), 1, false, true));
    for (int i = log_size; i > 2; --i)
        convs->push_back(ResBlock(c.channels_at(1 << i), c.channels_at(1 << (i - 1))));
    register_module("convs", convs);
    const int64_t ch = c.channels_at(4);
    final_conv = register_module("final_conv", conv_layer(ch + 1, ch, 3, false, true));
    const int64_t flat = ch * c.final_size() * c.final_size();
    final_linear = register_module("final_linear", equal_linear_pair(flat, ch, 1));
    coord_linear = register_module("coord_linear", equal_linear_pair(flat, ch, c.coord_num_dir));
}

DiscriminatorOutput DiscriminatorImpl::forward(const torch::Tensor& image) {
    TORCH_CHECK(image.dim() == 4 && image.size(1) == 3 && image.size(2) == config.patch_size &&
                    image.size(3) == config.patch_size,
                "discriminator input must be (B, 3, ", config.patch_size, ", ", config.patch_size,
                "), got ", image.sizes());
    DiscriminatorOutput out;
    // Channels-last on the CPU: oneDNN convolves it without reordering every layer's input and
    // gradient (a training step's D forward + backward ~15-25% faster at tiny's widths).
    auto x = convs->forward(image.is_cpu() ? image.contiguous(at::MemoryFormat::ChannelsLast) : image);
    out.trunk = x;
    // Minibatch stddev over contiguous groups of samples. The original groups sample i with
    // i + k * (B / group); contiguous groups are equally valid and keep every group inside one
    // data-parallel shard. Both agree when the whole batch is one group (as in golden/).
    const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
    const int64_t group = std::min<int64_t>(b, config.stddev_group);
    TORCH_CHECK(b % group == 0, "batch ", b, " is not divisible by the stddev group ", group);
    auto y = x.view({b / group, group, c, h, w});
    y = torch::sqrt(y.var(1, false) + 1e-8).mean({1, 2, 3});  // (B / group)
    y = y.repeat_interleave(group).view({b, 1, 1, 1}).expand({b, 1, h, w});
    x = final_conv->forward(torch::cat({x, y}, 1));
    out.final_conv = x;
    x = x.flatten(1);
    out.d_patch = final_linear->forward(x);
    out.ac_coords_pred = coord_linear->forward(x);
    return out;
}

}  // namespace igan
