#include "features/inception_v3.h"

#include <nlohmann/json.hpp>

#include "features/keras.h"

namespace igan {

namespace {

namespace F = torch::nn::functional;
using Json = nlohmann::json;

// The Keras graph walked back from mixed5, checked against the module, weights folded on the way.
class KerasMatcher {
public:
    KerasMatcher(const TfjsModel& model, const std::string& source)
        : graph_(model.topology_json, source), weights_(model) {}

    // Matches `branch` ending at Keras layer `end` (a conv step is Conv2D -> BatchNormalization
    // -> Activation relu, a pool step one pooling layer); returns the branch's input layer, ""
    // when the structure differs (recorded).
    std::string branch(const std::string& end, const std::vector<InceptionStep>& steps,
                       const std::string& prefix) {
        std::string at = end;
        for (auto step = steps.rbegin(); step != steps.rend(); ++step) {
            if (step->kind == InceptionStep::kConv) {
                const KerasLayer* relu = expect(at, "Activation");
                if (relu) check(*relu, "activation", "relu");
                const KerasLayer* bn =
                    relu ? expect(relu->inbound[0], "BatchNormalization") : nullptr;
                if (bn && bn->config.value("axis", Json(-1)) != Json(-1) &&
                    bn->config.value("axis", Json(-1)) != Json(3))
                    problem(*bn, "normalises axis " + bn->config["axis"].dump() + ", not channels");
                const KerasLayer* conv = bn ? expect(bn->inbound[0], "Conv2D") : nullptr;
                if (!conv) return "";
                const auto& w = step->conv->weight;
                check(*conv, "filters", w.size(0));
                check(*conv, "kernel_size", Json{w.size(2), w.size(3)});
                check(*conv, "strides", Json{step->stride, step->stride});
                check(*conv, "padding", step->same ? "same" : "valid");
                if (conv->config.contains("dilation_rate"))
                    check(*conv, "dilation_rate", Json{1, 1});
                weights_.fold_conv_bn(graph_, conv->name, bn->name, false, w.sizes().vec(),
                                      prefix + step->key, file);
                at = conv->inbound[0];
            } else {
                const bool avg = step->kind == InceptionStep::kAvgPool;
                const KerasLayer* pool = expect(at, avg ? "AveragePooling2D" : "MaxPooling2D");
                if (!pool) return "";
                check(*pool, "pool_size", Json{3, 3});
                check(*pool, "strides", Json{step->stride, step->stride});
                check(*pool, "padding", step->same ? "same" : "valid");
                at = pool->inbound[0];
            }
        }
        return at;
    }

    // A mixed block: a Concatenate of its branches along channels, all from `input` ("": any one
    // layer, returned).
    std::string block(const std::string& name, const InceptionBlockImpl& module,
                      const std::string& input) {
        const auto& branches = module.branches();
        const KerasLayer* concat = expect(name, "Concatenate", branches.size());
        if (!concat) return "";
        const Json axis = concat->config.value("axis", Json(-1));
        if (axis != Json(-1) && axis != Json(3)) problem(*concat, "does not concatenate channels");
        std::string from = input;
        for (size_t b = 0; b < branches.size(); ++b) {
            const std::string start = branch(concat->inbound[b], branches[b], name + ".");
            if (from.empty()) from = start;
            if (!start.empty() && start != from)
                problem(*concat,
                        "branch " + std::to_string(b) + " starts at " + start + ", not at " + from);
        }
        return from;
    }

    // The InputLayer's (height, width); records a problem unless it is [null, H, W, 3].
    Json input_size(const std::string& name) {
        const KerasLayer* input = expect(name, "InputLayer", 0);
        if (!input) return {};
        const Json shape = input->config.value("batch_input_shape", Json());
        if (!shape.is_array() || shape.size() != 4 || shape[3] != Json(3)) {
            problem(*input, "is not an RGB image input " + shape.dump());
            return {};
        }
        return {shape[1], shape[2]};
    }

    void finish(const std::string& last, const std::string& source) {
        const auto kept = graph_.ancestors(last);
        // Weights of layers after mixed5 are skipped; of layers the graph does not hold, errors.
        weights_.check_unused([&](const std::string& layer) {
            return graph_.find(layer) != nullptr && !kept.count(layer);
        });
        auto all = problems_;
        all.insert(all.end(), weights_.problems.begin(), weights_.problems.end());
        if (!all.empty()) throw problems_error(source, "not a Keras InceptionV3 up to mixed5", all);
    }

    TensorFile file;

private:
    // Layer `name` of class `cls` with `inputs` inbound layers, or nullptr (recorded).
    const KerasLayer* expect(const std::string& name, const std::string& cls, size_t inputs = 1) {
        const KerasLayer* layer = graph_.find(name);
        if (!layer) {
            problems_.push_back("no layer " + name + " (expected a " + cls + ")");
        } else if (layer->class_name != cls) {
            problem(*layer, "is a " + layer->class_name + ", expected a " + cls);
        } else if (layer->inbound.size() != inputs) {
            problem(*layer, "has " + std::to_string(layer->inbound.size()) + " inputs, expected " +
                                std::to_string(inputs));
        } else {
            return layer;
        }
        return nullptr;
    }
    void check(const KerasLayer& layer, const std::string& key, const Json& expected) {
        const Json found = layer.config.value(key, Json());
        if (found != expected)
            problem(layer, key + " " + found.dump() + ", expected " + expected.dump());
    }
    void problem(const KerasLayer& layer, const std::string& what) {
        problems_.push_back(layer.name + " " + what);
    }

    KerasGraph graph_;
    KerasWeights weights_;
    std::vector<std::string> problems_;
};

// The stem and each mixed block as Keras builds them (keras.applications.inception_v3).
struct BlockSpec {
    InceptionBlockImpl::Kind kind;
    int64_t width;
};
constexpr BlockSpec kMixed[InceptionV3Mixed5Impl::kBlocks] = {
    {InceptionBlockImpl::Kind::kA, 32},  {InceptionBlockImpl::Kind::kA, 64},
    {InceptionBlockImpl::Kind::kA, 64},  {InceptionBlockImpl::Kind::kB, 0},
    {InceptionBlockImpl::Kind::kC, 128}, {InceptionBlockImpl::Kind::kC, 160},
};

}  // namespace

InceptionBlockImpl::InceptionBlockImpl(Kind kind, int64_t in, int64_t width) {
    using K = InceptionStep;
    switch (kind) {
        case Kind::kStem:
            branches_.resize(1);
            conv(0, "Conv2d_1a_3x3", in, 32, {3, 3}, 2, false);
            conv(0, "Conv2d_2a_3x3", 32, 32, {3, 3}, 1, false);
            conv(0, "Conv2d_2b_3x3", 32, 64, {3, 3});
            pool(0, K::kMaxPool, 2);
            conv(0, "Conv2d_3b_1x1", 64, 80, {1, 1}, 1, false);
            conv(0, "Conv2d_4a_3x3", 80, 192, {3, 3}, 1, false);
            pool(0, K::kMaxPool, 2);
            out_ = 192;
            break;
        case Kind::kA:
            branches_.resize(4);
            conv(0, "branch1x1", in, 64, {1, 1});
            conv(1, "branch5x5_1", in, 48, {1, 1});
            conv(1, "branch5x5_2", 48, 64, {5, 5});
            conv(2, "branch3x3dbl_1", in, 64, {1, 1});
            conv(2, "branch3x3dbl_2", 64, 96, {3, 3});
            conv(2, "branch3x3dbl_3", 96, 96, {3, 3});
            pool(3, K::kAvgPool, 1);
            conv(3, "branch_pool", in, width, {1, 1});
            out_ = 64 + 64 + 96 + width;
            break;
        case Kind::kB:
            branches_.resize(3);
            conv(0, "branch3x3", in, 384, {3, 3}, 2, false);
            conv(1, "branch3x3dbl_1", in, 64, {1, 1});
            conv(1, "branch3x3dbl_2", 64, 96, {3, 3});
            conv(1, "branch3x3dbl_3", 96, 96, {3, 3}, 2, false);
            pool(2, K::kMaxPool, 2);
            out_ = 384 + 96 + in;
            break;
        case Kind::kC:
            branches_.resize(4);
            conv(0, "branch1x1", in, 192, {1, 1});
            conv(1, "branch7x7_1", in, width, {1, 1});
            conv(1, "branch7x7_2", width, width, {1, 7});
            conv(1, "branch7x7_3", width, 192, {7, 1});
            conv(2, "branch7x7dbl_1", in, width, {1, 1});
            conv(2, "branch7x7dbl_2", width, width, {7, 1});
            conv(2, "branch7x7dbl_3", width, width, {1, 7});
            conv(2, "branch7x7dbl_4", width, width, {7, 1});
            conv(2, "branch7x7dbl_5", width, 192, {1, 7});
            pool(3, K::kAvgPool, 1);
            conv(3, "branch_pool", in, 192, {1, 1});
            out_ = 4 * 192;
            break;
    }
}

void InceptionBlockImpl::conv(size_t branch, const std::string& key, int64_t in, int64_t out,
                              std::vector<int64_t> kernel, int64_t stride, bool same) {
    const std::vector<int64_t> pad = {same ? kernel[0] / 2 : 0, same ? kernel[1] / 2 : 0};
    auto c = register_module(
        key, torch::nn::Conv2d(
                 torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(pad).bias(true)));
    branches_[branch].push_back({InceptionStep::kConv, key, c, stride, same});
}

void InceptionBlockImpl::pool(size_t branch, InceptionStep::Kind kind, int64_t stride) {
    branches_[branch].push_back({kind, "", nullptr, stride, kind == InceptionStep::kAvgPool});
}

torch::Tensor InceptionBlockImpl::forward(const torch::Tensor& x) {
    std::vector<torch::Tensor> outs;
    for (auto& steps : branches_) {
        torch::Tensor h = x;
        for (auto& s : steps) {
            if (s.kind == InceptionStep::kConv) {
                h = s.conv->forward(h).relu_();
            } else if (s.kind == InceptionStep::kAvgPool) {
                // TF's 'same' average: the padded cells do not count.
                h = F::avg_pool2d(
                    h, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
            } else {
                h = F::max_pool2d(h, F::MaxPool2dFuncOptions(3).stride(s.stride));
            }
        }
        outs.push_back(h);
    }
    return outs.size() == 1 ? outs[0] : torch::cat(outs, 1);
}

InceptionV3Mixed5Impl::InceptionV3Mixed5Impl() {
    stem = register_module("stem", InceptionBlock(InceptionBlockImpl::Kind::kStem, 3));
    int64_t in = stem->out_channels();
    for (int64_t i = 0; i < kBlocks; ++i) {
        mixed.push_back(register_module("mixed" + std::to_string(i),
                                        InceptionBlock(kMixed[i].kind, in, kMixed[i].width)));
        in = mixed.back()->out_channels();
    }
    // Channels-last, as MobileNetV2Features: oneDNN's fast path on the CPU, cuDNN's preference.
    for (auto& p : parameters()) {
        p.set_requires_grad(false);
        if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
    }
}

torch::Tensor InceptionV3Mixed5Impl::forward(const torch::Tensor& rgb) {
    TORCH_CHECK(rgb.dim() == 4 && rgb.size(1) == 3, "InceptionV3Mixed5: expected (N, 3, H, W)");
    TORCH_CHECK(rgb.size(2) >= kMinInputSize && rgb.size(3) >= kMinInputSize,
                "InceptionV3Mixed5: images must be at least 43 x 43");
    auto x = stem(((rgb + 1) * 0.5).contiguous(at::MemoryFormat::ChannelsLast));
    for (auto& block : mixed) x = block(x);
    return x;
}

TensorFile inception_v3_mixed5_from_tfjs(const TfjsModel& model, const std::string& origin,
                                         const std::string& source) {
    require_layers_model(model, "InceptionV3", source);
    InceptionV3Mixed5 net;  // the expected structure and shapes
    KerasMatcher match(model, source);
    std::string input;
    for (int64_t i = InceptionV3Mixed5Impl::kBlocks - 1; i >= 0; --i)
        input = match.block("mixed" + std::to_string(i), *net->mixed[size_t(i)],
                            i > 0 ? "mixed" + std::to_string(i - 1) : "");
    Json size;
    if (!input.empty()) {
        const std::string image = match.branch(input, net->stem->branches()[0], "stem.");
        if (!image.empty()) size = match.input_size(image);
    }
    match.finish("mixed" + std::to_string(InceptionV3Mixed5Impl::kBlocks - 1), source);

    const nlohmann::ordered_json config = {
        {"output", "mixed5"},
        {"channels", InceptionV3Mixed5Impl::kChannels},
        {"trained_input_size", size},
    };
    TensorFile file = std::move(match.file);
    set_feature_metadata(file, kInceptionV3Mixed5Arch, config, origin);
    return file;
}

InceptionV3Mixed5 load_inception_v3_mixed5(const std::string& path, const torch::Device& device) {
    auto net = inception_v3_mixed5_from_tensors(
        read_feature_file(path, kInceptionV3Mixed5Arch).tensors, path);
    net->to(device);
    return net;
}

InceptionV3Mixed5 inception_v3_mixed5_from_tensors(
    const std::map<std::string, torch::Tensor>& tensors, const std::string& source) {
    InceptionV3Mixed5 net;
    load_parameters_strictly(*net, tensors, source, "InceptionV3 mixed5 feature weights");
    return net;
}

}  // namespace igan
