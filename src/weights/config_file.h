#pragma once
// Configs named on the command line (--config): the one place that reads a config from disk,
// for every command (init, train, generate's override, convert, bench).
#include <nlohmann/json.hpp>
#include <string>

#include "model/config.h"

namespace igan {

struct ConfigSource {
    ModelConfig config;
    nlohmann::json train_params;  // the original hyper-parameters, when the file has them
    std::string source;           // "the tiny preset" or the file's path
};

// A preset ("paper", "tiny", "golden"), a JSON config file (a ModelConfig, or a golden-style
// config.json with `train_params` and `golden_overrides`) or an original YAML
// (configs/model/*.yaml, io/yaml.h). Every problem with it is a UsageError: a config names what
// the user asks for.
ConfigSource read_config(const std::string& name_or_path);
inline ModelConfig load_model_config(const std::string& name_or_path) {
    return read_config(name_or_path).config;
}

}  // namespace igan
