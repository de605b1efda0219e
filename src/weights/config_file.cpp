#include "weights/config_file.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/yaml.h"

namespace igan {

namespace {

using nlohmann::json;

bool has_suffix(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// What igan cannot build, and the original fields that a ModelConfig does not carry.
void apply_train_params(ConfigSource& c, const std::string& path) {
    const json& p = c.train_params;
    auto flag = [&](const char* key, bool fallback) {
        return p.contains(key) && p[key].is_boolean() ? p[key].get<bool>() : fallback;
    };
    if (flag("styleGAN2_baseline", false) || !flag("use_ss", true))
        throw UsageError(path + ": describes the StyleGAN2 baseline (no structure synthesizer), "
                                "which igan does not implement");
    if (p.contains("coord_num_dir") && p["coord_num_dir"].is_number_integer())
        c.config.discriminator.coord_num_dir = p["coord_num_dir"].get<int>();
}

}  // namespace

ConfigSource read_config(const std::string& spec) {
    ConfigSource c;
    const auto names = preset_names();
    if (std::find(names.begin(), names.end(), spec) != names.end()) {
        c.config = preset_config(spec);
        c.source = "the " + spec + " preset";
        return c;
    }
    std::error_code ec;
    if (!std::filesystem::exists(spec, ec))
        throw UsageError("unknown config '" + spec + "': use paper, tiny, golden, or the path of "
                         "a JSON config file or an original YAML (configs/model/*.yaml)");
    // Bounded: a device such as /dev/zero would never end.
    constexpr uintmax_t kMaxConfigBytes = 1 << 20;
    if (!std::filesystem::is_regular_file(spec, ec) ||
        std::filesystem::file_size(spec, ec) > kMaxConfigBytes)
        throw UsageError("config " + spec + ": not a config file (a regular file of at most 1 MB)");
    std::string text;
    try {
        text = read_file(spec, kMaxConfigBytes);
    } catch (const Error& e) {
        throw UsageError("config " + spec + ": " + e.what());
    }
    c.source = spec;
    const size_t first = text.find_first_not_of(" \t\r\n");
    const bool is_json = !has_suffix(spec, ".yaml") && !has_suffix(spec, ".yml") &&
                         first != std::string::npos && text[first] == '{';
    try {
        if (is_json) {
            c.config = model_config_from_string(text);  // parses and validates
            const json root = json::parse(text);
            if (root.contains("train_params") && root["train_params"].is_object())
                c.train_params = root["train_params"];
        } else {
            const json root = parse_flat_yaml(text, spec);
            if (!root.contains("train_params") || !root["train_params"].is_object())
                throw UsageError(spec + ": no train_params section (expected an original "
                                        "configs/model/*.yaml)");
            c.train_params = root["train_params"];
            c.config = model_config_from_string(json{{"train_params", c.train_params}}.dump());
        }
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        const std::string what = e.what();
        // The YAML reader's messages already start with the path.
        throw UsageError(what.rfind(spec + ":", 0) == 0 ? what : spec + ": " + what);
    }
    if (c.train_params.is_object()) apply_train_params(c, spec);
    return c;
}

}  // namespace igan
