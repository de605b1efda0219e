#include "weights/model_file.h"

#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/state.h"

namespace igan {

namespace {

constexpr const char* kFormatVersion = "1";

// What every weight file must satisfy before its tensors are used: a format version this igan
// reads (files without one predate the field or come from other tools) and finite values only
// (NaN or Inf weights render black images without any error).
void check_weights(const TensorFile& file, const std::string& path) {
    const auto version = file.metadata.find("igan.format_version");
    if (version != file.metadata.end() && version->second != kFormatVersion)
        throw Error(path + ": igan.format_version is '" + version->second.substr(0, 20) +
                    "' but this igan reads version " + kFormatVersion +
                    " (written by another igan release: use a matching igan, or re-export it)");
    std::vector<std::string> bad;
    for (const auto& [name, tensor] : file.tensors)
        if (tensor.is_floating_point() && !torch::isfinite(tensor).all().item<bool>())
            bad.push_back(name);
    if (bad.empty()) return;
    std::string names;
    for (size_t i = 0; i < bad.size() && i < 5; ++i) names += (i ? ", " : "") + bad[i];
    if (bad.size() > 5) names += ", ... (" + std::to_string(bad.size() - 5) + " more)";
    throw Error(path + ": " + std::to_string(bad.size()) +
                (bad.size() == 1 ? " tensor holds" : " tensors hold") + " NaN or infinite values (" + names +
                "); the file is corrupt or its training diverged: use an earlier checkpoint");
}

ModelConfig resolve_config(const TensorFile& file, const std::string& path,
                           const std::string& config_override) {
    if (!config_override.empty()) return load_model_config(config_override);
    auto it = file.metadata.find("igan.config");
    if (it == file.metadata.end())
        throw Error(path + ": no igan.config in the file's metadata; it was not written by igan. "
                           "Pass its config with --config (paper, tiny, golden or a JSON file), "
                           "or convert it with `igan convert`");
    try {
        return model_config_from_string(it->second);
    } catch (const Error& e) {
        throw Error(path + ": " + e.what());
    }
}

}  // namespace

LoadedGenerator load_generator(const std::string& path, const std::string& config_override) {
    const TensorFile file = read_safetensors(path);
    check_weights(file, path);
    auto arch = file.metadata.find("igan.arch");
    if (arch != file.metadata.end() && arch->second != "infinitygan.generator")
        throw Error(path + ": holds '" + arch->second + "', not an InfinityGAN generator");
    LoadedGenerator out;
    out.config = resolve_config(file, path, config_override);
    out.generator = Generator(out.config.generator);
    load_state_dict(*out.generator, file.tensors, path);
    out.generator->eval();
    auto step = file.metadata.find("igan.step");
    if (step != file.metadata.end()) out.step = std::atoll(step->second.c_str());
    return out;
}

Discriminator load_discriminator(const std::string& path, const ModelConfig& config) {
    const TensorFile file = read_safetensors(path);
    check_weights(file, path);
    Discriminator d(config.discriminator);
    load_state_dict(*d, file.tensors, path);
    return d;
}

void save_module(const std::string& path, const torch::nn::Module& module,
                 const ModelConfig& config, const std::string& arch, int64_t step) {
    TensorFile file;
    for (const auto& [key, tensor] : state_dict(module)) file.tensors[key] = tensor.detach();
    file.metadata["igan.format_version"] = kFormatVersion;
    file.metadata["igan.arch"] = arch;
    file.metadata["igan.config"] = model_config_to_string(config);
    file.metadata["igan.step"] = std::to_string(step);
    write_safetensors(path, file);
}

void save_optimizer(const torch::optim::Optimizer& optimizer, const std::string& path) {
    std::ostringstream bytes;
    torch::save(optimizer, bytes);
    const std::string data = bytes.str();
    AtomicFile out(path);
    out.write(data.data(), data.size());
    out.commit();
}

void remove_stale_temporaries(const std::string& dir) {
    std::error_code ec;
    std::vector<std::filesystem::path> stale;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
        if (entry.path().filename().string().find(".tmp-") != std::string::npos)
            stale.push_back(entry.path());
    for (const auto& path : stale) std::filesystem::remove_all(path, ec);
}

}  // namespace igan
