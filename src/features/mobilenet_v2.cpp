#include "features/mobilenet_v2.h"

#include <nlohmann/json.hpp>

#include "features/keras.h"

namespace igan {

namespace {

namespace F = torch::nn::functional;

// (expansion t, output channels c, stride s) of blocks 0..10 (the paper's table 2, rows 2-6).
struct BlockSpec {
    int64_t t, c, s;
};
constexpr BlockSpec kSpecs[MobileNetV2FeaturesImpl::kBlocks] = {
    {1, 16, 1}, {6, 24, 2}, {6, 24, 1}, {6, 32, 2}, {6, 32, 1}, {6, 32, 1},
    {6, 64, 2}, {6, 64, 1}, {6, 64, 1}, {6, 64, 1}, {6, 96, 1},
};
constexpr int64_t kStemChannels = 32;

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad,
                       int64_t groups = 1) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                 .stride(stride)
                                 .padding(pad)
                                 .groups(groups)
                                 .bias(true));
}

// Keras' stride-2 layers: ZeroPadding2D((0, 1), (0, 1)) then a valid 3x3 convolution.
torch::Tensor pad_bottom_right(const torch::Tensor& x) {
    return F::pad(x, F::PadFuncOptions({0, 1, 0, 1}));
}

// ReLU6 in place on a fresh convolution output (autograd keeps what hardtanh_ needs).
torch::Tensor clamp6(torch::Tensor x) { return torch::hardtanh_(x, 0, 6); }

// The Keras layers that a conv + batch norm pair of the module comes from.
struct KerasPair {
    std::string target;  // module prefix, e.g. "blocks.3.expand"
    std::string conv;    // e.g. "block_3_expand"
    std::string bn;      // e.g. "block_3_expand_BN"
    bool depthwise;
};

std::vector<KerasPair> keras_pairs() {
    std::vector<KerasPair> pairs = {{"stem", "Conv1", "bn_Conv1", false}};
    for (int64_t i = 0; i < MobileNetV2FeaturesImpl::kBlocks; ++i) {
        const std::string t = "blocks." + std::to_string(i) + ".";
        const std::string k = i == 0 ? "expanded_conv_" : "block_" + std::to_string(i) + "_";
        if (kSpecs[i].t != 1) pairs.push_back({t + "expand", k + "expand", k + "expand_BN", false});
        pairs.push_back({t + "depthwise", k + "depthwise", k + "depthwise_BN", true});
        pairs.push_back({t + "project", k + "project", k + "project_BN", false});
    }
    return pairs;
}

// Layers of the full Keras MobileNetV2 that the feature network leaves out.
bool is_skipped_layer(const std::string& layer) {
    if (layer == "Conv_1" || layer == "Conv_1_bn" || layer.rfind("dense_", 0) == 0) return true;
    if (layer.rfind("block_", 0) != 0) return false;
    const size_t end = layer.find('_', 6);
    try {
        return std::stoi(layer.substr(6, end - 6)) >= MobileNetV2FeaturesImpl::kBlocks;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

InvertedResidualImpl::InvertedResidualImpl(int64_t in, int64_t out, int64_t expand_ratio,
                                           int64_t stride_)
    : stride(stride_), residual(stride_ == 1 && in == out) {
    const int64_t hidden = in * expand_ratio;
    if (expand_ratio != 1) expand = register_module("expand", conv(in, hidden, 1, 1, 0));
    depthwise =
        register_module("depthwise", conv(hidden, hidden, 3, stride, stride == 1 ? 1 : 0, hidden));
    project = register_module("project", conv(hidden, out, 1, 1, 0));
}

torch::Tensor InvertedResidualImpl::forward(const torch::Tensor& x) {
    auto h = expand ? clamp6(expand(x)) : x;
    h = clamp6(depthwise(stride == 1 ? h : pad_bottom_right(h)));
    h = project(h);
    return residual ? h + x : h;
}

MobileNetV2FeaturesImpl::MobileNetV2FeaturesImpl() {
    stem = register_module("stem", conv(3, kStemChannels, 3, 2, 0));
    blocks = register_module("blocks", torch::nn::ModuleList());
    int64_t in = kStemChannels;
    for (const BlockSpec& s : kSpecs) {
        block_list_.push_back(InvertedResidual(in, s.c, s.t, s.s));
        blocks->push_back(block_list_.back());
        in = s.c;
    }
    // Channels-last: 2-4x faster on the CPU here (measured at 101 px), and what cuDNN prefers.
    for (auto& p : parameters()) {
        p.set_requires_grad(false);
        if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
}

std::vector<torch::Tensor> MobileNetV2FeaturesImpl::forward(const torch::Tensor& rgb) {
    TORCH_CHECK(rgb.dim() == 4 && rgb.size(1) == 3, "MobileNetV2Features: expected (N, 3, H, W)");
    TORCH_CHECK(rgb.size(2) >= 16 && rgb.size(3) >= 16,
                "MobileNetV2Features: images must be at least 16 x 16");
    const auto x01 = pad_bottom_right((rgb + 1) * 0.5).contiguous(at::MemoryFormat::ChannelsLast);
    auto x = clamp6(stem(x01));
    std::vector<torch::Tensor> out;
    size_t tap = 0;
    for (int64_t i = 0; i < kBlocks; ++i) {
        x = block_list_[i](x);
        if (i == kTaps[tap]) {
            out.push_back(x);
            ++tap;
        }
    }
    return out;
}

TensorFile mobilenet_v2_from_tfjs(const TfjsModel& model, const std::string& origin,
                                  const std::string& source) {
    require_layers_model(model, "MobileNetV2", source);
    const KerasGraph graph(model.topology_json, source);
    KerasWeights weights(model);
    // The expected shapes come from the module itself.
    MobileNetV2Features net;
    std::map<std::string, torch::Tensor> targets;
    for (const auto& p : net->named_parameters(true)) targets[p.key()] = p.value();
    TensorFile file;
    for (const KerasPair& pair : keras_pairs())
        weights.fold_conv_bn(graph, pair.conv, pair.bn, pair.depthwise,
                             targets.at(pair.target + ".weight").sizes().vec(), pair.target, file);
    weights.check_unused(is_skipped_layer);
    if (!weights.problems.empty())
        throw problems_error(source, "not a Keras MobileNetV2 (alpha 1.0)", weights.problems);

    const nlohmann::ordered_json config = {
        {"blocks", MobileNetV2FeaturesImpl::kBlocks},
        {"taps", std::vector<int64_t>(std::begin(MobileNetV2FeaturesImpl::kTaps),
                                      std::end(MobileNetV2FeaturesImpl::kTaps))},
        {"channels", std::vector<int64_t>(std::begin(MobileNetV2FeaturesImpl::kChannels),
                                          std::end(MobileNetV2FeaturesImpl::kChannels))},
    };
    set_feature_metadata(file, kMobileNetV2Arch, config, origin);
    return file;
}

MobileNetV2Features load_mobilenet_v2(const std::string& path, const torch::Device& device) {
    auto net = mobilenet_v2_from_tensors(read_feature_file(path, kMobileNetV2Arch).tensors, path);
    net->to(device);
    return net;
}

MobileNetV2Features mobilenet_v2_from_tensors(const std::map<std::string, torch::Tensor>& tensors,
                                              const std::string& source) {
    MobileNetV2Features net;
    load_parameters_strictly(*net, tensors, source, "MobileNetV2 feature weights");
    return net;
}

}  // namespace igan
