#pragma once
// Keras layers models read from TF.js (io/tfjs.h) turned into igan's feature networks, and their
// weight files loaded back: what the MobileNetV2 and InceptionV3 converters and loaders share.
// Both collect every problem and report them in one igan::Error (strict loading).
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/tfjs.h"
#include "model/state.h"

namespace igan {

// "SOURCE: WHAT (N problems): p1; p2; ..." (the first 20).
Error problems_error(const std::string& source, const std::string& what,
                     const std::vector<std::string>& problems);

struct KerasLayer {
    std::string name, class_name;
    nlohmann::json config;
    std::vector<std::string> inbound;  // the layers of its first inbound node, in order
};

// model_config.config.layers of a Keras topology, by name.
class KerasGraph {
public:
    KerasGraph(const std::string& topology_json, const std::string& source);
    const KerasLayer* find(const std::string& name) const;  // nullptr when absent
    // `name` and every layer it depends on.
    std::set<std::string> ancestors(const std::string& name) const;

private:
    std::map<std::string, KerasLayer> layers_;
};

// A model's weights by name ("layer/kernel"); every take() is remembered, every problem listed.
class KerasWeights {
public:
    explicit KerasWeights(const TfjsModel& model);
    bool has(const std::string& name) const { return weights_.count(name) > 0; }
    // In double precision; undefined (a problem recorded) when missing or of another shape.
    torch::Tensor take(const std::string& name, const std::vector<int64_t>& shape);
    // A Conv2D (or DepthwiseConv2D) followed by a BatchNormalization as one convolution of
    // OIHW shape `oihw` (depthwise: (C, 1, kH, kW)) written to file as target.weight and
    // target.bias: kernel x gamma / sqrt(var + eps), bias beta + (b - mean) gamma / sqrt(var +
    // eps). gamma and beta are 1 and 0 where the layer's config says scale or center false; eps
    // and those flags come from the BatchNormalization's config (Keras defaults when absent).
    void fold_conv_bn(const KerasGraph& graph, const std::string& conv, const std::string& bn,
                      bool depthwise, const std::vector<int64_t>& oihw, const std::string& target,
                      TensorFile& file);
    // Weights never taken whose layer `skip` does not accept are reported as unexpected.
    template <typename Skip>
    void check_unused(Skip&& skip) {
        for (const auto& [name, value] : weights_)
            if (!used_.count(name) && !skip(name.substr(0, name.find('/'))))
                problems.push_back("unexpected " + name + " " + shape_str(value.sizes()));
    }
    std::vector<std::string> problems;

private:
    std::map<std::string, torch::Tensor> weights_;
    std::set<std::string> used_;
};

// Throws unless `model` is a layers model (Keras topology); `net` names what needs it.
void require_layers_model(const TfjsModel& model, const std::string& net,
                          const std::string& source);

// The metadata of a converted feature file: format version, `arch`, `config` (plus the input
// range and the batch-norm folding every converter shares) and `origin`.
void set_feature_metadata(TensorFile& file, const std::string& arch, nlohmann::ordered_json config,
                          const std::string& origin);

// Reads a converted feature file whose igan.arch must be `arch`. A missing file names
// scripts/fetch-features.sh.
TensorFile read_feature_file(const std::string& path, const std::string& arch);

// Copies `tensors` into the module's parameters, strictly: their state_problems (model/state.h)
// are listed in one igan::Error ("SOURCE: not WHAT ..."). Eval mode.
void load_parameters_strictly(torch::nn::Module& net,
                              const std::map<std::string, torch::Tensor>& tensors,
                              const std::string& source, const std::string& what);

}  // namespace igan
