#pragma once
// Configs named on the command line (--config): the one place that reads a config from disk.
#include <string>

#include "model/config.h"

namespace igan {

// A preset ("paper", "tiny", "golden") or the path of a JSON config file (a ModelConfig, or a
// golden-style config.json with `train_params` and `golden_overrides`). Every problem with it
// is a UsageError: a config names what the user asks for.
ModelConfig load_model_config(const std::string& name_or_path);

}  // namespace igan
