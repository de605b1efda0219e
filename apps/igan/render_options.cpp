// Options and output shared by the rendering commands.
#include "render_options.h"

#include <cstdio>
#include <iostream>
#include <random>

#include "progress.h"

namespace igan::cli {

uint64_t resolve_seed(int64_t seed, bool quiet) {
    if (seed >= 0) return uint64_t(seed);
    if (seed != -1)
        throw UsageError("--seed must be in [0, 9223372036854775807], or -1 for a random seed");
    std::random_device rd;
    const uint64_t s = ((uint64_t(rd()) << 32) | rd()) >> 1;
    if (!quiet) std::fprintf(stderr, "seed: %llu\n", (unsigned long long)s);
    return s;
}

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
    cmd->add_option("--workers", a.workers,
                    "forward passes run at once, sharing --threads (0 = one per thread; 1 = "
                    "least memory)")
        ->capture_default_str();
    cmd->add_option("--psi,--trunc", a.psi, "truncation psi of the global style (1 = none)")
        ->capture_default_str();
    cmd->add_option("--device", a.device, "cpu or cuda")->capture_default_str();
    add_precision_option(cmd, &a.precision);
    cmd->add_option("--beyond-band", a.beyond_band,
                    "rows beyond the training band: fade (smooth sky and plain ground) or "
                    "texture (the original InfinityGAN: the band's edge rows continued)")
        ->check(CLI::IsMember({"fade", "texture"}))
        ->capture_default_str();
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
    r.workers = a.workers;
    r.psi = a.psi;
    r.cyclic_width = a.cyclic_width;
    r.fade_beyond_band = a.beyond_band == "fade";
    r.out = out;
    return r;
}

void render_with_progress(const igan::Engine& engine, const igan::RenderJob& job,
                          const GenerateArgs& a, const std::string& label) {
    const auto& req = job.request();
    ProgressBar bar(label, a.quiet, req.width * req.height);
    const auto res = engine.generate(job, [&](const igan::Progress& p) { bar.update(p); });
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

}  // namespace igan::cli
