#include "features/keras.h"

#include <filesystem>

namespace igan {

namespace {

using Json = nlohmann::json;

double config_number(const KerasLayer* layer, const char* key, double fallback) {
    if (!layer || !layer->config.contains(key) || !layer->config[key].is_number()) return fallback;
    return layer->config[key].get<double>();
}

bool config_flag(const KerasLayer* layer, const char* key, bool fallback) {
    if (!layer || !layer->config.contains(key) || !layer->config[key].is_boolean()) return fallback;
    return layer->config[key].get<bool>();
}

}  // namespace

Error problems_error(const std::string& source, const std::string& what,
                     const std::vector<std::string>& problems) {
    std::string msg =
        source + ": " + what + " (" + std::to_string(problems.size()) + " problems): ";
    for (size_t i = 0; i < problems.size() && i < 20; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > 20) msg += "; ...";
    return Error(msg);
}

KerasGraph::KerasGraph(const std::string& topology_json, const std::string& source) {
    const Json topology = Json::parse(topology_json);
    const Json* layers = &topology;
    for (const char* key : {"model_config", "config", "layers"}) {
        if (!layers->is_object() || !layers->contains(key))
            throw Error(source + ": the Keras topology has no model_config.config.layers");
        layers = &(*layers)[key];
    }
    if (!layers->is_array()) throw Error(source + ": the Keras layers are not a list");
    try {
        for (const Json& l : *layers) {
            KerasLayer layer;
            layer.class_name = l.at("class_name").get<std::string>();
            layer.config = l.value("config", Json::object());
            if (!layer.config.is_object())
                throw Error(source + ": a layer config is not an object");
            layer.name = layer.config.at("name").get<std::string>();
            const Json nodes = l.value("inbound_nodes", Json::array());
            if (!nodes.empty())
                for (const Json& inbound : nodes.at(0))
                    layer.inbound.push_back(inbound.at(0).get<std::string>());
            if (!layers_.emplace(layer.name, layer).second)
                throw Error(source + ": layer " + layer.name + " appears twice");
        }
    } catch (const Json::exception& e) {
        throw Error(source + ": a malformed Keras layer (" + e.what() + ")");
    }
}

const KerasLayer* KerasGraph::find(const std::string& name) const {
    const auto it = layers_.find(name);
    return it == layers_.end() ? nullptr : &it->second;
}

std::set<std::string> KerasGraph::ancestors(const std::string& name) const {
    std::set<std::string> seen;
    std::vector<std::string> todo = {name};
    while (!todo.empty()) {
        const std::string n = todo.back();
        todo.pop_back();
        if (!seen.insert(n).second) continue;
        if (const KerasLayer* l = find(n))
            todo.insert(todo.end(), l->inbound.begin(), l->inbound.end());
    }
    return seen;
}

KerasWeights::KerasWeights(const TfjsModel& model) {
    for (const auto& w : model.weights) weights_[w.name] = w.value;
}

torch::Tensor KerasWeights::take(const std::string& name, const std::vector<int64_t>& shape) {
    used_.insert(name);
    const auto it = weights_.find(name);
    if (it == weights_.end()) {
        problems.push_back("missing " + name + " " + shape_str(shape));
        return {};
    }
    if (it->second.sizes() != c10::IntArrayRef(shape)) {
        problems.push_back("wrong shape for " + name + ": file has " +
                           shape_str(it->second.sizes()) + ", expected " + shape_str(shape));
        return {};
    }
    return it->second.to(torch::kDouble);
}

void KerasWeights::fold_conv_bn(const KerasGraph& graph, const std::string& conv,
                                const std::string& bn, bool depthwise,
                                const std::vector<int64_t>& oihw, const std::string& target,
                                TensorFile& file) {
    const int64_t o = oihw[0], i = oihw[1], kh = oihw[2], kw = oihw[3];
    const auto kernel = depthwise ? take(conv + "/depthwise_kernel", {kh, kw, o, 1})
                                  : take(conv + "/kernel", {kh, kw, i, o});
    const auto conv_bias =
        has(conv + "/bias") ? take(conv + "/bias", {o}) : torch::zeros({o}, torch::kDouble);
    const KerasLayer* layer = graph.find(bn);
    if (!layer || layer->class_name != "BatchNormalization")
        problems.push_back("no BatchNormalization layer " + bn);
    const auto ones = torch::ones({o}, torch::kDouble);
    const auto gamma = config_flag(layer, "scale", true) ? take(bn + "/gamma", {o}) : ones;
    const auto beta = config_flag(layer, "center", true) ? take(bn + "/beta", {o}) : ones * 0;
    const auto mean = take(bn + "/moving_mean", {o}), var = take(bn + "/moving_variance", {o});
    if (!layer || !kernel.defined() || !conv_bias.defined() || !gamma.defined() ||
        !beta.defined() || !mean.defined() || !var.defined())
        return;
    // HWIO -> OIHW; depthwise (H, W, C, 1) -> (C, 1, H, W).
    const auto w = depthwise ? kernel.permute({2, 3, 0, 1}) : kernel.permute({3, 2, 0, 1});
    const auto factor = gamma / torch::sqrt(var + config_number(layer, "epsilon", 1e-3));
    file.tensors[target + ".weight"] =
        (w * factor.view({o, 1, 1, 1})).to(torch::kFloat).contiguous();
    file.tensors[target + ".bias"] = (beta + (conv_bias - mean) * factor).to(torch::kFloat);
}

void require_layers_model(const TfjsModel& model, const std::string& net,
                          const std::string& source) {
    if (model.format != "layers-model")
        throw Error(source + ": a " + model.format + "; " + net +
                    " features need a Keras layers model (keras.applications " + net +
                    " converted with tensorflowjs)");
}

void set_feature_metadata(TensorFile& file, const std::string& arch, nlohmann::ordered_json config,
                          const std::string& origin) {
    config["input"] = "RGB in [0, 1] (forward takes [-1, 1])";
    config["batch_norm"] = "folded into the convolution biases";
    file.metadata["igan.format_version"] = "1";
    file.metadata["igan.arch"] = arch;
    file.metadata["igan.config"] = config.dump();
    file.metadata["igan.origin"] = origin;
}

TensorFile read_feature_file(const std::string& path, const std::string& arch) {
    if (!std::filesystem::exists(path))
        throw Error(path +
                    " not found: scripts/fetch-features.sh fetches and converts the feature "
                    "networks (docs/features.md)");
    TensorFile file = read_safetensors(path);
    const auto it = file.metadata.find("igan.arch");
    const std::string found = it == file.metadata.end() ? std::string() : it->second;
    if (found != arch)
        throw Error(path + ": not " + arch + " weights (igan.arch is '" + found +
                    "'; scripts/fetch-features.sh writes them)");
    return file;
}

void load_parameters_strictly(torch::nn::Module& net,
                              const std::map<std::string, torch::Tensor>& tensors,
                              const std::string& source, const std::string& what) {
    std::map<std::string, torch::Tensor> targets;
    for (const auto& p : net.named_parameters(true)) targets[p.key()] = p.value();
    const auto problems = state_problems(targets, specs_of(tensors));
    if (!problems.empty()) throw problems_error(source, "not " + what, problems);
    torch::NoGradGuard no_grad;
    for (auto& [key, target] : targets) target.copy_(tensors.at(key));
    net.eval();
}

}  // namespace igan
