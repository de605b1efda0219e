#pragma once
// Weight files: safetensors whose metadata carries the resolved config
// (igan.format_version, igan.arch, igan.config, igan.step); tensor names are the original keys.
#include <torch/torch.h>

#include <string>

#include "model/config.h"
#include "model/discriminator.h"
#include "model/generator.h"
#include "weights/config_file.h"

namespace igan {

// igan.arch of the two InfinityGAN networks' weight files.
constexpr const char* kGeneratorArch = "infinitygan.generator";
constexpr const char* kDiscriminatorArch = "infinitygan.discriminator";
// igan train's projected discriminator: its heads and fixed mixing, not the feature network.
constexpr const char* kProjectedDiscriminatorArch = "igan.projected_discriminator";
// igan train --discriminator mixed: the projected one and the pixel one ("projected.*", "pixel.*").
constexpr const char* kMixedDiscriminatorArch = "igan.mixed_discriminator";

struct LoadedGenerator {
    ModelConfig config;
    Generator generator{nullptr};
    int64_t step = 0;
    std::string sha256;  // of the file, hashed while it was read
};

// config_override: preset name or JSON path used when the file has no igan.config (e.g. the
// golden files) or to override it. Strict: every mismatch is listed in one igan::Error.
LoadedGenerator load_generator(const std::string& path, const std::string& config_override = "");
Discriminator load_discriminator(const std::string& path, const ModelConfig& config);

void save_module(const std::string& path, const torch::nn::Module& module,
                 const ModelConfig& config, const std::string& arch, int64_t step);

// Adam's state in LibTorch's optimizer archive (torch::load reads it), written through an
// AtomicFile: LibTorch's file writer finishes the archive in its destructor and throws there when
// the disk is full (std::terminate, SIGABRT); serialized in memory first, a short write is an
// igan::Error naming the file. The tensors are saved from CPU copies and the states are keyed by
// parameter index, so a file does not depend on the device or the LibTorch that wrote it.
void save_optimizer(const torch::optim::Optimizer& optimizer, const std::string& path);
// Replaces the optimizer's state with the file's (from any LibTorch 1.x or 2.x, any device),
// moved to `device`, the device of its parameters. States are matched to parameters by position
// within each group; a missing state starts fresh, a wrong count or shape is an igan::Error.
void load_optimizer(torch::optim::Optimizer& optimizer, const std::string& path,
                    torch::Device device);

// Removes `<dir>/<name>.tmp-*` entries: checkpoints that a crash or a full disk interrupted.
void remove_stale_temporaries(const std::string& dir);

}  // namespace igan
