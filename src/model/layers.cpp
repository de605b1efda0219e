#include "model/layers.h"

#include <cmath>

namespace igan {

namespace F = torch::nn::functional;
using torch::indexing::Slice;

const double kSqrt2 = std::sqrt(2.0);

torch::Tensor fused_leaky_relu(const torch::Tensor& x, const torch::Tensor& bias) {
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = bias.size(0);
    return torch::leaky_relu(x + bias.view(shape), 0.2) * kSqrt2;
}

torch::Tensor blur3_valid(const torch::Tensor& x, double gain) {
    // Separable, accumulated in place into fresh temporaries (one allocation per pass; the sums
    // are those of x0 + 2 x1 + x2, so the result is unchanged bit for bit).
    const int64_t h = x.size(-2), w = x.size(-1);
    auto v = x.narrow(-2, 1, h - 2) * 2;
    v.add_(x.narrow(-2, 0, h - 2)).add_(x.narrow(-2, 2, h - 2));
    auto b = v.narrow(-1, 1, w - 2) * 2;
    b.add_(v.narrow(-1, 0, w - 2)).add_(v.narrow(-1, 2, w - 2));
    return b.mul_(gain / 16.0);
}

torch::Tensor center_crop(const torch::Tensor& x, int64_t h, int64_t w) {
    const int64_t dy = (x.size(-2) - h) / 2, dx = (x.size(-1) - w) / 2;
    return x.narrow(-2, dy, h).narrow(-1, dx, w);
}

torch::Tensor generator_blur_kernel() {
    auto k1 = torch::tensor({1.f, 2.f, 1.f});
    return torch::outer(k1, k1) / 16 * 4;
}

BiasActImpl::BiasActImpl(int64_t channels) {
    bias = register_parameter("bias", torch::zeros({channels}));
}

EqualLinearImpl::EqualLinearImpl(int64_t in, int64_t out, double lr_mul_, double bias_init,
                                 bool activate_)
    : lr_mul(lr_mul_), scale(lr_mul_ / std::sqrt(double(in))), activate(activate_) {
    weight = register_parameter("weight", torch::randn({out, in}) / lr_mul);
    bias = register_parameter("bias", torch::full({out}, bias_init));
}

torch::Tensor EqualLinearImpl::forward(const torch::Tensor& x) {
    if (activate) return fused_leaky_relu(F::linear(x, weight * scale), bias * lr_mul);
    return F::linear(x, weight * scale, bias * lr_mul);
}

ModulatedConv2dImpl::ModulatedConv2dImpl(int64_t in, int64_t out, int64_t kernel_,
                                         int64_t style_dim, bool demodulate_, bool upsample_)
    : in_channels(in), out_channels(out), kernel(kernel_), demodulate(demodulate_),
      upsample(upsample_), scale(1.0 / std::sqrt(double(in * kernel_ * kernel_))) {
    weight = register_parameter("weight", torch::randn({1, out, in, kernel, kernel}));
    modulation = register_module("modulation", EqualLinear(style_dim, in, 1.0, 1.0));
    if (upsample) blur = register_module("blur", KernelBuffer(generator_blur_kernel()));
}

torch::Tensor conv_transpose2x_cropped(const torch::Tensor& x, const torch::Tensor& w) {
    // Transposed conv gives 2H+1; one pixel per side is cropped (the valid blur then gives 2H-3).
    // (Four polyphase ordinary convolutions do the same MACs but measured slower here: oneDNN
    // runs the transposed convolution directly, and four small-kernel calls each pay the layout
    // conversions.)
    const auto y = F::conv_transpose2d(x, w.transpose(0, 1), F::ConvTranspose2dFuncOptions().stride(2));
    return y.narrow(-2, 1, y.size(-2) - 2).narrow(-1, 1, y.size(-1) - 2);
}

torch::Tensor ModulatedConv2dImpl::forward(const torch::Tensor& x, const torch::Tensor& style) {
    const auto s = modulation(style);           // (Bs, in)
    const auto w = weight[0] * scale;           // (out, in, k, k)
    if (s.size(0) == 1) {
        auto wm = w * s.view({1, in_channels, 1, 1});
        if (demodulate)
            wm = wm * torch::rsqrt(wm.pow(2).sum({1, 2, 3}, true) + 1e-8);
        if (!upsample) return F::conv2d(x, wm);
        return blur3_valid(conv_transpose2x_cropped(x, wm), 4.0);
    }
    TORCH_CHECK(s.size(0) == x.size(0), "style batch ", s.size(0), " != input batch ", x.size(0));
    const auto xs = x * s.view({-1, in_channels, 1, 1});
    auto y = upsample ? conv_transpose2x_cropped(xs, w) : F::conv2d(xs, w);
    if (demodulate) {
        // d[b, o] = rsqrt(sum_i s[b,i]^2 * sum_kk w[o,i,kk]^2 + eps)
        const auto d = torch::rsqrt(torch::matmul(s.pow(2), w.pow(2).sum({2, 3}).t()) + 1e-8);
        y = y * d.view({-1, out_channels, 1, 1});
    }
    return upsample ? blur3_valid(y, 4.0) : y;
}

torch::Tensor ModulatedConv2dImpl::forward_mixed(const torch::Tensor& x, const StyleMix& style) {
    const auto& mix = style.weights;
    TORCH_CHECK(mix.dim() == 4 && mix.size(0) == x.size(0) && mix.size(1) == style.palette.size(0) &&
                    mix.size(2) == x.size(2) && mix.size(3) == x.size(3),
                "style weights ", mix.sizes(), " do not match input ", x.sizes(), " and palette ",
                style.palette.sizes());
    const auto s = torch::einsum("bnhw,ni->bihw", {mix, modulation(style.palette)});
    const auto w = weight[0] * scale;
    const auto xs = x * s;
    auto y = upsample ? conv_transpose2x_cropped(xs, w) : F::conv2d(xs, w);
    if (demodulate) {
        // d[b, o, p] = rsqrt(sum_i s[b,i,p]^2 * sum_kk w[o,i,kk]^2 + eps) at input pixel p.
        auto d = torch::rsqrt(torch::einsum("bihw,oi->bohw", {s.pow(2), w.pow(2).sum({2, 3})}) +
                              1e-8);
        if (upsample) {
            // Input pixel i sits at output 2i: align_corners bilinear is the matching upsampling.
            d = F::interpolate(d, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{y.size(-2), y.size(-1)})
                                      .mode(torch::kBilinear)
                                      .align_corners(true));
        } else {
            d = center_crop(d, y.size(-2), y.size(-1));
        }
        y = y * d;
    }
    return upsample ? blur3_valid(y, 4.0) : y;
}

NoiseInjectionImpl::NoiseInjectionImpl() { weight = register_parameter("weight", torch::zeros({1})); }

torch::Tensor NoiseInjectionImpl::forward(const torch::Tensor& x, const torch::Tensor& noise) {
    return x + weight * noise;
}

StyledConvImpl::StyledConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim,
                               bool upsample, bool use_noise) {
    conv = register_module("conv", ModulatedConv2d(in, out, kernel, style_dim, true, upsample));
    if (use_noise) noise = register_module("noise", NoiseInjection());
    activate = register_module("activate", BiasAct(out));
}

torch::Tensor StyledConvImpl::forward(const torch::Tensor& x, const torch::Tensor& style,
                                      const torch::Tensor& noise_map) {
    return add_noise_and_activate(conv(x, style), noise_map);
}

torch::Tensor StyledConvImpl::forward_mixed(const torch::Tensor& x, const StyleMix& style,
                                      const torch::Tensor& noise_map) {
    return add_noise_and_activate(conv->forward_mixed(x, style), noise_map);
}

torch::Tensor StyledConvImpl::add_noise_and_activate(torch::Tensor y,
                                                     const torch::Tensor& noise_map) {
    if (noise) {
        TORCH_CHECK(noise_map.defined(), "StyledConv needs a noise map");
        TORCH_CHECK(noise_map.size(-1) == y.size(-1) && noise_map.size(-2) == y.size(-2),
                    "noise map ", noise_map.sizes(), " does not match the conv output ", y.sizes());
    }
    if (torch::GradMode::is_enabled()) return activate(noise ? noise(y, noise_map) : y);
    // Inference: y is this layer's own fresh output, so noise, bias and activation update it in
    // place (the same arithmetic, without three activation-sized temporaries).
    if (noise) y.add_(noise_map * noise->weight);
    y.add_(activate->bias.view({1, -1, 1, 1}));
    torch::leaky_relu_(y, 0.2);
    return y.mul_(kSqrt2);
}

ToRGBImpl::ToRGBImpl(int64_t in, int64_t style_dim) {
    conv = register_module("conv", ModulatedConv2d(in, 3, 1, style_dim, false, false));
    bias = register_parameter("bias", torch::zeros({1, 3, 1, 1}));
    upsample = register_module("upsample", KernelBuffer(generator_blur_kernel()));
}

torch::Tensor ToRGBImpl::forward(const torch::Tensor& x, const torch::Tensor& style,
                                 const torch::Tensor& skip) {
    return add_skip(conv(x, style) + bias, skip);
}

torch::Tensor ToRGBImpl::forward_mixed(const torch::Tensor& x, const StyleMix& style,
                                 const torch::Tensor& skip) {
    return add_skip(conv->forward_mixed(x, style) + bias, skip);
}

torch::Tensor ToRGBImpl::add_skip(torch::Tensor rgb, const torch::Tensor& skip) {
    if (!skip.defined()) return rgb;
    // Per-channel transposed conv by the [1,2,1]x[1,2,1]/4 kernel, stride 2: H -> 2H+1, crop to
    // 2H-1, then centre-crop. That kernel makes it exactly bilinear interpolation with aligned
    // corners (even pixels copy, odd ones average their neighbours), which is far faster than a
    // grouped transposed convolution.
    const int64_t h = skip.size(-2), w = skip.size(-1);
    auto up = F::interpolate(skip, F::InterpolateFuncOptions()
                                       .size(std::vector<int64_t>{2 * h - 1, 2 * w - 1})
                                       .mode(torch::kBilinear)
                                       .align_corners(true));
    return rgb + center_crop(up, rgb.size(-2), rgb.size(-1));
}

}  // namespace igan
