// `igan generate`: render rectangles of the endless canvas to PNG.
#include <cstdio>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>

#include "commands.h"
#include "progress.h"

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

uint64_t resolve_seed(int64_t seed, bool quiet) {
    if (seed >= 0) return uint64_t(seed);
    if (seed != -1) throw UsageError("--seed must be >= 0, or -1 for a random seed");
    std::random_device rd;
    const uint64_t s = ((uint64_t(rd()) << 32) | rd()) >> 1;
    if (!quiet) std::fprintf(stderr, "seed: %llu\n", (unsigned long long)s);
    return s;
}

struct GenerateArgs {
    std::string model, out, outdir, seeds, device = "cpu", config;
    int64_t seed = 0, x = 0, width = 512, height = 256, tile = 0, batch = 1, cyclic_width = 0;
    std::optional<int64_t> y;
    double psi = 1.0;
    bool quiet = false, json = false, force = false;
};

void add_common_render_options(CLI::App* cmd, GenerateArgs& a) {
    cmd->add_option("-m,--model", a.model, "model weights (.safetensors)")->required();
    cmd->add_option("-s,--seed", a.seed, "seed; -1 picks a random one and prints it")
        ->capture_default_str();
    cmd->add_option("--width", a.width, "output width in pixels")->capture_default_str();
    cmd->add_option("--height", a.height, "output height in pixels")->capture_default_str();
    cmd->add_option("--x", a.x, "left edge on the endless canvas (any int64)")
        ->capture_default_str();
    cmd->add_option("--y", a.y,
                    "top edge on the canvas; default -height/2 centres the image on the horizon "
                    "(y = 0 is the vertical centre of the training images)");
    cmd->add_option("--tile", a.tile, "tile size in output pixels (0 = model default)")
        ->capture_default_str();
    cmd->add_option("--batch", a.batch, "tiles per forward pass")->capture_default_str();
    cmd->add_option("--trunc", a.psi, "truncation psi of the global style (1 = none)")
        ->capture_default_str();
    cmd->add_option("--device", a.device, "cpu or cuda")->capture_default_str();
    cmd->add_option("--config", a.config,
                    "config for weight files without igan metadata (paper, tiny, golden, file)");
    cmd->add_flag("--force", a.force, "allow sizes beyond the safety cap");
    cmd->add_flag("-q,--quiet", a.quiet, "no progress output");
    cmd->add_flag("--json", a.json, "print the generation record as JSON on stdout");
}

igan::GenerateRequest make_request(const GenerateArgs& a, uint64_t seed, const std::string& out) {
    igan::GenerateRequest r;
    r.seed = seed;
    r.x = a.x;
    r.width = a.width;
    r.height = a.height;
    r.y = a.y ? *a.y : -(a.height / 2);
    r.tile = a.tile;
    r.batch = a.batch;
    r.psi = a.psi;
    r.cyclic_width = a.cyclic_width;
    r.out = out;
    return r;
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
        igan::cli::ProgressBar bar("seed " + std::to_string(seed), a.quiet,
                                   req.width * req.height);
        const auto res = engine.generate(req, [&](const igan::Progress& p) { bar.update(p); });
        bar.finish();
        if (a.json) {
            std::cout << res.record_json << "\n";
        } else {
            std::cout << res.path << "\n";
        }
        if (!a.quiet)
            std::fprintf(stderr, "wrote %s (%lldx%lld, %lld tiles, %.2fs)\n", res.path.c_str(),
                         (long long)req.width, (long long)req.height, (long long)res.tiles,
                         res.seconds);
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
