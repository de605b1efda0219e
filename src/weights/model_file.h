#pragma once
// Weight files: safetensors whose metadata carries the resolved config
// (igan.format_version, igan.arch, igan.config, igan.step); tensor names are the original keys.
#include <torch/torch.h>

#include <string>

#include "model/config.h"
#include "model/discriminator.h"
#include "model/generator.h"

namespace igan {

struct LoadedGenerator {
    ModelConfig config;
    Generator generator{nullptr};
    int64_t step = 0;
};

// config_override: preset name or JSON path used when the file has no igan.config (e.g. the
// golden files) or to override it. Strict: every mismatch is listed in one igan::Error.
LoadedGenerator load_generator(const std::string& path, const std::string& config_override = "");
Discriminator load_discriminator(const std::string& path, const ModelConfig& config);

void save_module(const std::string& path, const torch::nn::Module& module,
                 const ModelConfig& config, const std::string& arch, int64_t step);

}  // namespace igan
