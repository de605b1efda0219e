// `igan generate`: render rectangles of the endless canvas to PNG.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "render_options.h"

namespace igan::cli {
namespace {

// "0-31,42" -> {0..31, 42}
std::vector<uint64_t> parse_seed_list(const std::string& spec) {
    std::vector<uint64_t> seeds;
    std::stringstream ss(spec);
    std::string part;
    while (std::getline(ss, part, ',')) {
        try {
            const auto dash = part.find('-', 1);
            size_t used = 0;
            if (dash == std::string::npos) {
                seeds.push_back(std::stoull(part, &used));
                if (used != part.size()) throw std::invalid_argument(part);
            } else {
                const uint64_t a = std::stoull(part.substr(0, dash));
                const uint64_t b = std::stoull(part.substr(dash + 1));
                if (b < a || b - a > 100000) throw std::invalid_argument(part);
                for (uint64_t s = a; s <= b; ++s) seeds.push_back(s);
            }
        } catch (const std::exception&) {
            throw UsageError("--seeds '" + spec + "': expected a list like 0-31,42");
        }
    }
    if (seeds.empty()) throw UsageError("--seeds is empty");
    return seeds;
}

int run_generate(const GenerateArgs& a) {
    std::vector<std::pair<uint64_t, std::string>> jobs;
    if (!a.seeds.empty()) {
        if (a.outdir.empty()) throw UsageError("--seeds needs --outdir");
        for (uint64_t s : parse_seed_list(a.seeds)) {
            char name[64];
            std::snprintf(name, sizeof name, "/seed%04llu.png", (unsigned long long)s);
            jobs.emplace_back(s, a.outdir + name);
        }
    } else {
        if (a.out.empty()) throw UsageError("generate needs --out FILE.png (or --seeds with --outdir)");
        jobs.emplace_back(resolve_seed(a.seed, a.quiet), a.out);
    }
    for (const auto& job : jobs) {
        igan::validate_request(make_request(a, job.first, job.second), a.force);
        igan::check_output_path(job.second);
    }
    const igan::Engine engine(a.model, a.device, a.config);
    for (const auto& [seed, out] : jobs) {
        const auto req = make_request(a, seed, out);
        engine.validate(req, a.force);
        render_with_progress(engine, req, a, "seed " + std::to_string(seed));
    }
    return 0;
}

RegisterCommand reg(20, [](CLI::App& app, Globals&) {
    auto args = std::make_shared<GenerateArgs>();
    auto* cmd = app.add_subcommand("generate", "render a rectangle of the endless canvas to PNG");
    add_common_render_options(cmd, *args);
    cmd->add_option("-o,--out", args->out, "output PNG");
    cmd->add_option("--seeds", args->seeds, "several seeds, e.g. 0-31,42 (with --outdir)");
    cmd->add_option("--outdir", args->outdir, "folder for --seeds outputs (seedNNNN.png)");
    cmd->add_option("--cyclic-width", args->cyclic_width,
                    "make the canvas horizontally periodic with this period in pixels");
    return std::make_pair(cmd, Runner([args] { return run_generate(*args); }));
});

}  // namespace
}  // namespace igan::cli
