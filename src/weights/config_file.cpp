#include "weights/config_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace igan {

ModelConfig load_model_config(const std::string& name_or_path) {
    const auto names = preset_names();
    if (std::find(names.begin(), names.end(), name_or_path) != names.end())
        return preset_config(name_or_path);
    // A config names what the user asks for: every problem with it is a usage error (exit 2).
    std::error_code ec;
    if (!std::filesystem::exists(name_or_path, ec))
        throw UsageError("unknown config '" + name_or_path +
                         "': use paper, tiny, golden, or the path of a JSON config file");
    // Bounded: a device such as /dev/zero would never end.
    constexpr uintmax_t kMaxConfigBytes = 1 << 20;
    if (!std::filesystem::is_regular_file(name_or_path, ec) ||
        std::filesystem::file_size(name_or_path, ec) > kMaxConfigBytes)
        throw UsageError("config " + name_or_path + ": not a JSON config file (a regular file of "
                         "at most 1 MB)");
    std::ifstream in(name_or_path);
    if (!in) throw UsageError("config " + name_or_path + ": cannot be read");
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        return model_config_from_string(ss.str());
    } catch (const Error& e) {
        throw UsageError(name_or_path + ": " + e.what());
    }
}

}  // namespace igan
