#include "model/generator.h"

#include <cmath>

namespace igan {

MappingNetworkImpl::MappingNetworkImpl(int64_t dim, int64_t n_mlp) {
    for (int64_t i = 1; i <= n_mlp; ++i)
        layers.push_back(register_module(std::to_string(i), EqualLinear(dim, dim, 0.01, 0.0, true)));
}

torch::Tensor MappingNetworkImpl::forward(const torch::Tensor& z) {
    auto x = z * torch::rsqrt(z.pow(2).mean(-1, true) + 1e-8);
    for (auto& layer : layers) x = layer(x);
    return x;
}

ConditionalBlockImpl::ConditionalBlockImpl(int64_t in, int64_t out, int64_t kernel,
                                           int64_t style_dim) {
    conv = register_module("conv", StyledConv(in, out, kernel, style_dim, false, false));
}

StructureSynthesizerImpl::StructureSynthesizerImpl(const GeneratorConfig& c) : config(c) {
    auto implicit_model = register_module("implicit_model", std::make_shared<torch::nn::Module>());
    // Key path: structure_synthesizer.implicit_model.conv_stack.{i}.conv.*
    auto stack = std::make_shared<torch::nn::Module>();
    for (int i = 0; i < c.ss_n_layers; ++i) {
        blocks.push_back(stack->register_module(
            std::to_string(i), ConditionalBlock(c.local_latent_dim + 3, c.local_latent_dim,
                                                2 * c.ss_unfold_radius + 1, c.global_latent_dim)));
    }
    implicit_model->register_module("conv_stack", stack);
}

torch::Tensor StructureSynthesizerImpl::forward(const torch::Tensor& z_global,
                                                const torch::Tensor& local_latent,
                                                const torch::Tensor& coords, FeatureMap* features,
                                                const SpatialStyles* spatial) {
    TORCH_CHECK(local_latent.dim() == 4 && local_latent.size(1) == config.local_latent_dim,
                "local latent must be (B, ", config.local_latent_dim, ", h, w), got ",
                local_latent.sizes());
    TORCH_CHECK(coords.dim() == 4 && coords.size(1) == 3 &&
                    coords.size(-1) == local_latent.size(-1) &&
                    coords.size(-2) == local_latent.size(-2),
                "coords must be (B, 3, h, w) matching the local latent, got ", coords.sizes());
    auto x = local_latent;
    // At inference on the CPU the layers run channels-last (layers.cpp, conv2d_inference):
    // coordinates in that layout keep each layer's input concatenation channels-last too,
    // instead of a transposing copy per layer.
    const bool nhwc = coords.is_cpu() && !torch::GradMode::is_enabled() && !spatial;
    const auto grid = nhwc ? coords.contiguous(at::MemoryFormat::ChannelsLast) : coords;
    for (size_t i = 0; i < blocks.size(); ++i) {
        auto c = center_crop(grid, x.size(-2), x.size(-1));
        if (c.size(0) != x.size(0)) c = c.expand({x.size(0), -1, -1, -1});
        auto input = torch::cat({x, c}, 1);
        x = spatial ? blocks[i]->conv->forward_mixed(input, StyleMix{spatial->palette, spatial->conv[i]})
                    : blocks[i]->conv(input, z_global);
        if (features) (*features)["ss_block" + std::to_string(i)] = x;
    }
    return x;
}

std::vector<int64_t> StructureSynthesizerImpl::block_input_sizes(int64_t side) const {
    std::vector<int64_t> sizes;
    for (size_t i = 0; i < blocks.size(); ++i) sizes.push_back(side - 2 * config.ss_unfold_radius * int64_t(i));
    return sizes;
}

std::vector<int64_t> ts_output_sizes(const GeneratorConfig& c, int64_t n) {
    std::vector<int64_t> sizes;
    for (int i = 0; i < c.num_ts_convs(); ++i) {
        n = (i % 2 == 0) ? 2 * n - 3 : n - 2;
        sizes.push_back(n);
    }
    return sizes;
}

std::vector<int64_t> ts_strides(const GeneratorConfig& c) {
    std::vector<int64_t> strides;
    int64_t s = 1;
    for (int i = 0; i < c.num_ts_convs(); ++i) {
        if (i % 2 == 0) s *= 2;
        strides.push_back(s);
    }
    return strides;
}

TextureSynthesizerImpl::TextureSynthesizerImpl(const GeneratorConfig& c) : config(c) {
    const int64_t g = c.global_latent_dim;
    mapping = register_module("mapping", MappingNetwork(g, c.n_mlp));
    // Unused by the forward pass; kept so original state dicts load strictly.
    auto const_z = register_module("const_z", std::make_shared<torch::nn::Module>());
    const_z->register_parameter("input", torch::randn({1, c.local_latent_dim, 4, 4}));
    auto convs_holder = register_module("convs", std::make_shared<torch::nn::Module>());
    const auto in_ch = c.ts_conv_in_channels();
    for (int i = 0; i < c.num_ts_convs(); ++i)
        convs.push_back(convs_holder->register_module(
            std::to_string(i),
            StyledConv(in_ch[i], c.ts_conv_out_channels[i], 3, g, i % 2 == 0, true)));
    auto rgb_holder = register_module("to_rgbs", std::make_shared<torch::nn::Module>());
    const auto src = c.to_rgb_src_conv();
    for (size_t k = 0; k < src.size(); ++k)
        to_rgbs.push_back(rgb_holder->register_module(
            std::to_string(k), ToRGB(c.ts_conv_out_channels[src[k]], g)));
    auto noises = register_module("noises", std::make_shared<torch::nn::Module>());
    for (int i = 0; i < c.num_ts_convs(); ++i) {
        const int64_t s = int64_t(4) << ((i + 1) / 2);
        noises->register_buffer("noise_" + std::to_string(i), torch::randn({1, 1, s, s}));
    }
}

torch::Tensor TextureSynthesizerImpl::styles_from_latent(const torch::Tensor& global_latent,
                                                         int64_t inject_index) {
    TORCH_CHECK(global_latent.dim() == 3 && global_latent.size(1) == 2 &&
                    global_latent.size(2) == config.global_latent_dim,
                "global latent must be (B, 2, ", config.global_latent_dim, "), got ",
                global_latent.sizes());
    const int64_t n = config.n_latent();
    auto w1 = mapping(global_latent.select(1, 0));
    if (inject_index < 0 || inject_index >= n)
        return w1.unsqueeze(1).expand({-1, n, -1}).contiguous();
    auto w2 = mapping(global_latent.select(1, 1));
    return torch::cat({w1.unsqueeze(1).expand({-1, inject_index, -1}),
                       w2.unsqueeze(1).expand({-1, n - inject_index, -1})},
                      1);
}

torch::Tensor TextureSynthesizerImpl::forward(const torch::Tensor& structure,
                                              const torch::Tensor& styles,
                                              const std::vector<torch::Tensor>& noises,
                                              FeatureMap* features, const SpatialStyles* spatial,
                                              int rgb_index) {
    const auto& st = spatial ? spatial->palette : styles;
    TORCH_CHECK(st.dim() == 3 && st.size(1) == config.n_latent(),
                "styles must be (B, ", config.n_latent(), ", G), got ", st.sizes());
    const auto src = config.to_rgb_src_conv();
    const auto tgt = config.to_rgb_style_index();
    TORCH_CHECK(rgb_index < int(src.size()), "rgb_index ", rgb_index, " but the model has ",
                src.size(), " ToRGB layers");
    const int run = rgb_index < 0 ? config.num_ts_convs() : src[rgb_index] + 1;
    TORCH_CHECK(int(noises.size()) >= run, "need ", run, " noise maps, got ", noises.size());
    auto x = structure;
    torch::Tensor rgb;
    size_t k = 0;
    for (int i = 0; i < run; ++i) {
        x = spatial ? convs[i]->forward_mixed(x, StyleMix{st.select(1, i), spatial->conv[i]}, noises[i])
                    : convs[i](x, st.select(1, i), noises[i]);
        if (features) (*features)["ts_conv" + std::to_string(i)] = x;
        if (k < src.size() && src[k] == i) {
            rgb = spatial ? to_rgbs[k]->forward_mixed(
                                x, StyleMix{st.select(1, tgt[k]), spatial->to_rgb[k]}, rgb)
                          : to_rgbs[k](x, st.select(1, tgt[k]), rgb);
            if (features) (*features)["ts_to_rgb" + std::to_string(k)] = rgb;
            ++k;
        }
    }
    return rgb;
}

GeneratorImpl::GeneratorImpl(const GeneratorConfig& c) : config(c) {
    structure_synthesizer = register_module("structure_synthesizer", StructureSynthesizer(c));
    texture_synthesizer = register_module("texture_synthesizer", TextureSynthesizer(c));
}

GeneratorOutput GeneratorImpl::forward(const torch::Tensor& global_latent,
                                       const torch::Tensor& local_latent,
                                       const torch::Tensor& coords,
                                       const std::vector<torch::Tensor>& noises,
                                       int64_t inject_index, FeatureMap* features) {
    GeneratorOutput out;
    out.styles = texture_synthesizer->styles_from_latent(global_latent, inject_index);
    out.structure_latent = structure_synthesizer(global_latent.select(1, 0), local_latent, coords,
                                                 features);
    out.image = texture_synthesizer(out.structure_latent, out.styles, noises, features);
    return out;
}

}  // namespace igan

namespace igan {

double generator_macs(const GeneratorConfig& c, int64_t n) {
    double macs = 0;
    const int64_t k = 2 * c.ss_unfold_radius + 1;
    int64_t s = n + 2 * c.ss_margin();
    for (int i = 0; i < c.ss_n_layers; ++i) {
        s -= k - 1;
        macs += double(s) * s * c.local_latent_dim * (c.local_latent_dim + 3) * k * k;
    }
    const auto sizes = ts_output_sizes(c, n);
    const auto in_ch = c.ts_conv_in_channels();
    int64_t in_size = n;
    for (int i = 0; i < c.num_ts_convs(); ++i) {
        // A transposed conv does its MACs at input resolution.
        const int64_t at = (i % 2 == 0) ? in_size : sizes[i];
        macs += double(at) * at * in_ch[i] * c.ts_conv_out_channels[i] * 9;
        if (i % 2 == 1) macs += double(sizes[i]) * sizes[i] * c.ts_conv_out_channels[i] * 3;
        in_size = sizes[i];
    }
    return macs;
}

}  // namespace igan
