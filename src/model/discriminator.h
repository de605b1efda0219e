#pragma once
// StyleGAN2 discriminator with InfinityGAN's vertical-position head
// (models/stylegan2discriminator.py of hubert0527/infinityGAN @ a9b45dd); key names match.
#include <torch/torch.h>

#include "model/config.h"
#include "model/layers.h"

namespace igan {

class EqualConv2dImpl : public torch::nn::Module {
public:
    EqualConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                    bool bias);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight, bias;
    int64_t stride, padding;
    double scale;
};
TORCH_MODULE(EqualConv2d);

// Zero-pad then FIR with the [1,3,3,1] outer-product kernel (sum 1), per channel.
class BlurImpl : public torch::nn::Module {
public:
    BlurImpl(int64_t pad0, int64_t pad1);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor kernel;
    int64_t pad0, pad1;
};
TORCH_MODULE(Blur);

// A Sequential that can itself sit inside a Sequential (ConvLayer / EqualLinear pairs).
class ConvLayerImpl : public torch::nn::SequentialImpl {
public:
    using SequentialImpl::SequentialImpl;
    torch::Tensor forward(torch::Tensor x) { return SequentialImpl::forward(std::move(x)); }
};
TORCH_MODULE(ConvLayer);

class ResBlockImpl : public torch::nn::Module {
public:
    ResBlockImpl(int64_t in, int64_t out);
    torch::Tensor forward(const torch::Tensor& x);
    ConvLayer conv1{nullptr}, conv2{nullptr}, skip{nullptr};
};
TORCH_MODULE(ResBlock);

struct DiscriminatorOutput {
    torch::Tensor d_patch;         // (B, 1) realness logit
    torch::Tensor ac_coords_pred;  // (B, coord_num_dir); column 0 is the vertical position
    torch::Tensor trunk;           // (B, C, s, s) conv trunk output
    torch::Tensor final_conv;      // (B, C, s, s) after the minibatch-stddev channel
};

class DiscriminatorImpl : public torch::nn::Module {
public:
    explicit DiscriminatorImpl(const DiscriminatorConfig& config);
    DiscriminatorOutput forward(const torch::Tensor& image);  // (B, 3, P, P)
    DiscriminatorConfig config;
    torch::nn::Sequential convs{nullptr};
    ConvLayer final_conv{nullptr}, final_linear{nullptr}, coord_linear{nullptr};
};
TORCH_MODULE(Discriminator);

}  // namespace igan
