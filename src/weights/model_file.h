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

// torch::save of an optimizer through an AtomicFile. LibTorch's file writer finishes the archive
// in its destructor and throws there when the disk is full (std::terminate, SIGABRT); serialized
// in memory first, a short write is an igan::Error naming the file.
void save_optimizer(const torch::optim::Optimizer& optimizer, const std::string& path);

// Removes `<dir>/<name>.tmp-*` entries: checkpoints that a crash or a full disk interrupted.
void remove_stale_temporaries(const std::string& dir);

}  // namespace igan
