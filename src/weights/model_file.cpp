#include "weights/model_file.h"

#include <filesystem>
#include <map>
#include <sstream>
#include <type_traits>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "model/state.h"

namespace igan {

namespace {

// What every weight file must satisfy before its tensors are used: its format version and arch
// (check_igan_identity) and finite values only (NaN or Inf weights render black images without
// any error).
void check_weights(const TensorFile& file, const std::string& path, const std::string& arch) {
    check_igan_identity(file, path, arch);
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
    LoadedGenerator out;
    const TensorFile file = read_safetensors(path, &out.sha256);
    check_weights(file, path, kGeneratorArch);
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
    check_weights(file, path, kDiscriminatorArch);
    Discriminator d(config.discriminator);
    load_state_dict(*d, file.tensors, path);
    return d;
}

void save_module(const std::string& path, const torch::nn::Module& module,
                 const ModelConfig& config, const std::string& arch, int64_t step) {
    TensorFile file;
    for (const auto& [key, tensor] : state_dict(module)) file.tensors[key] = tensor.detach();
    file.metadata["igan.format_version"] = kIganFormatVersion;
    file.metadata["igan.arch"] = arch;
    file.metadata["igan.config"] = model_config_to_string(config);
    file.metadata["igan.step"] = std::to_string(step);
    write_safetensors(path, file);
}

namespace {

// The optimizer's own key for a parameter's state: a string in LibTorch 1.x, the TensorImpl
// pointer in 2.x.
template <typename Map>
typename Map::key_type state_key(const Map&, const torch::Tensor& param) {
    if constexpr (std::is_same_v<typename Map::key_type, std::string>)
        return c10::guts::to_string(param.unsafeGetTensorImpl());
    else
        return param.unsafeGetTensorImpl();
}

torch::optim::AdamParamState& adam_state(torch::optim::OptimizerParamState& state) {
    auto* adam = dynamic_cast<torch::optim::AdamParamState*>(&state);
    if (adam == nullptr) throw Error("optimizer state: only Adam's is saved and loaded");
    return *adam;
}

void move_adam_state(torch::optim::AdamParamState& s, torch::Device device) {
    if (s.exp_avg().defined()) s.exp_avg(s.exp_avg().to(device));
    if (s.exp_avg_sq().defined()) s.exp_avg_sq(s.exp_avg_sq().to(device));
    if (s.max_exp_avg_sq().defined()) s.max_exp_avg_sq(s.max_exp_avg_sq().to(device));
}

}  // namespace

void save_optimizer(const torch::optim::Optimizer& optimizer, const std::string& path) {
    namespace ser = torch::serialize;
    ser::OutputArchive archive;
    ser::OutputArchive states(archive.compilation_unit());
    ser::OutputArchive groups(archive.compilation_unit());
    const auto& state = optimizer.state();
    const auto& param_groups = optimizer.param_groups();
    groups.write("param_groups/size", torch::tensor(int64_t(param_groups.size())));
    int64_t index = 0;
    for (size_t i = 0; i < param_groups.size(); ++i) {
        ser::OutputArchive group(archive.compilation_unit());
        const auto& params = param_groups[i].params();
        group.write("params/size", torch::tensor(int64_t(params.size())));
        for (size_t j = 0; j < params.size(); ++j) {
            const std::string key = std::to_string(index++);
            group.write("params/" + std::to_string(j), c10::IValue(key));
            const auto it = state.find(state_key(state, params[j]));
            if (it == state.end()) continue;  // no step taken for this parameter yet
            auto copy = it->second->clone();
            move_adam_state(adam_state(*copy), torch::kCPU);
            ser::OutputArchive one(archive.compilation_unit());
            copy->serialize(one);
            states.write(key, one);
        }
        ser::OutputArchive options(archive.compilation_unit());
        param_groups[i].options().serialize(options);
        group.write("options", options);
        groups.write("param_groups/" + std::to_string(i), group);
    }
    archive.write("pytorch_version", c10::IValue("1.5.0"));  // LibTorch's optimizer format tag
    archive.write("state", states);
    archive.write("param_groups", groups);
    std::ostringstream bytes;
    archive.save_to(bytes);
    const std::string data = bytes.str();
    AtomicFile out(path);
    out.write(data.data(), data.size());
    out.commit();
}

void load_optimizer(torch::optim::Optimizer& optimizer, const std::string& path,
                    torch::Device device) {
    namespace ser = torch::serialize;
    // Saved keys and each group's list of them are matched as strings, never parsed: files
    // from LibTorch 1.x name states by hexadecimal pointers, which 2.x's own loader reads as 0.
    std::map<std::string, std::unique_ptr<torch::optim::AdamParamState>> saved;
    std::vector<std::vector<std::string>> group_keys;
    try {
        ser::InputArchive archive;
        archive.load_from(path, torch::Device(torch::kCPU));  // CUDA-saved state on any build
        c10::IValue version;
        archive.read("pytorch_version", version);
        if (!version.isString() || version.toStringRef() != "1.5.0")
            throw Error(path + ": not an optimizer state in LibTorch's format");
        ser::InputArchive states;
        archive.read("state", states);
        for (const auto& key : states.keys()) {
            ser::InputArchive one;
            states.read(key, one);
            auto s = std::make_unique<torch::optim::AdamParamState>();
            s->serialize(one);
            saved[key] = std::move(s);
        }
        ser::InputArchive groups;
        archive.read("param_groups", groups);
        torch::Tensor n_groups;
        groups.read("param_groups/size", n_groups);
        for (int64_t i = 0; i < n_groups.item<int64_t>(); ++i) {
            ser::InputArchive group;
            groups.read("param_groups/" + std::to_string(i), group);
            torch::Tensor n_params;
            group.read("params/size", n_params);
            auto& keys = group_keys.emplace_back();
            for (int64_t j = 0; j < n_params.item<int64_t>(); ++j) {
                c10::IValue key;
                group.read("params/" + std::to_string(j), key);
                keys.push_back(key.toStringRef());
            }
        }
    } catch (const c10::Error& e) {
        throw Error(path + ": cannot read the optimizer state: " + e.what_without_backtrace());
    }

    auto& param_groups = optimizer.param_groups();
    if (group_keys.size() != param_groups.size())
        throw Error(path + ": " + std::to_string(group_keys.size()) +
                    " parameter groups, the optimizer has " +
                    std::to_string(param_groups.size()));
    std::vector<std::string> problems;
    for (size_t i = 0; i < param_groups.size(); ++i) {
        const auto& params = param_groups[i].params();
        if (group_keys[i].size() != params.size()) {
            problems.push_back("group " + std::to_string(i) + " has " +
                               std::to_string(group_keys[i].size()) + " parameters, expected " +
                               std::to_string(params.size()));
            continue;
        }
        for (size_t j = 0; j < params.size(); ++j) {
            const auto it = saved.find(group_keys[i][j]);
            if (it == saved.end()) continue;
            const auto& s = *it->second;
            for (const auto& [name, t] : {std::pair{"exp_avg", &s.exp_avg()},
                                          std::pair{"exp_avg_sq", &s.exp_avg_sq()}})
                if (!t->defined() || t->sizes() != params[j].sizes())
                    problems.push_back(std::string(name) + " of parameter " + std::to_string(j) +
                                       " of group " + std::to_string(i) + " is " +
                                       (t->defined() ? c10::str(t->sizes()) : "missing") +
                                       ", the parameter " + c10::str(params[j].sizes()));
        }
    }
    if (!problems.empty()) {
        std::string msg = path + ": optimizer state does not match the model (" +
                          std::to_string(problems.size()) + " problems): ";
        for (size_t k = 0; k < problems.size(); ++k) msg += (k ? "; " : "") + problems[k];
        throw Error(msg);
    }
    auto& state = optimizer.state();
    state.clear();
    for (size_t i = 0; i < param_groups.size(); ++i) {
        const auto& params = param_groups[i].params();
        for (size_t j = 0; j < params.size(); ++j) {
            const auto it = saved.find(group_keys[i][j]);
            if (it == saved.end() || !it->second) continue;
            move_adam_state(*it->second, device);
            state[state_key(state, params[j])] = std::move(it->second);
        }
    }
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
