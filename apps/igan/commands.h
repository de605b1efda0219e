#pragma once
// Subcommands register themselves (one cmd_*.cpp per command): main parses, then runs the
// chosen command's runner. Runners return the exit code and may throw igan::Error/UsageError.
#include <igan/igan.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace igan::cli {

struct Globals {
    int threads = 0;
    std::string self_exe;  // path of this binary, for commands that spawn themselves
};

using Runner = std::function<int()>;
// Adds a subcommand to `app` and returns it with its runner.
using Registration = std::function<std::pair<CLI::App*, Runner>(CLI::App& app, Globals& globals)>;

struct CommandRegistry {
    static std::vector<std::pair<int, Registration>>& all();
};

// `static RegisterCommand r(order, [](CLI::App& app, Globals& g) {...});` in a cmd_*.cpp file;
// `order` fixes the position in --help.
struct RegisterCommand {
    RegisterCommand(int order, Registration r) { CommandRegistry::all().emplace_back(order, std::move(r)); }
};

// --webp-quality: "lossless" (kWebpLossless) or an integer quality 1..100 into *quality.
CLI::Option* add_webp_quality_option(CLI::App* cmd, int* quality, const std::string& help);
// --precision fp32|tf32|bf16|fp16 of a rendering command's convolutions into *precision (the
// library refuses what the device cannot run: tf32 and fp16 need CUDA).
CLI::Option* add_precision_option(CLI::App* cmd, std::string* precision);

}  // namespace igan::cli
