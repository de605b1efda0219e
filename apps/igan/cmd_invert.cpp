// `igan outpaint` and `igan inbetween`: applications built on GAN inversion.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>

#include "commands.h"
#include "progress.h"

namespace igan::cli {
namespace {

struct InvertArgs {
    std::string model, device = "cpu", config, out;
    igan::InversionOptions inversion;
    int64_t samples = 1, tile = 0, batch = 1, seed = 0;
    bool no_blend = false, quiet = false, json = false;
};

void add_inversion_options(CLI::App* cmd, InvertArgs& a) {
    cmd->add_option("-m,--model", a.model, "model weights (.safetensors)")->required();
    cmd->add_option("-o,--out", a.out, "output PNG (several samples: <stem>-<k>.png)")->required();
    cmd->add_option("--steps", a.inversion.steps, "inversion steps")->capture_default_str();
    cmd->add_option("--lr", a.inversion.lr, "inversion learning rate")->capture_default_str();
    cmd->add_option("--perceptual", a.inversion.perceptual,
                    "discriminator weights for the perceptual loss (default: the model's "
                    "<stem>/discriminator.safetensors beside it when present)");
    cmd->add_option("--feature-loss", a.inversion.feature_weight,
                    "weight of the MobileNetV2 perceptual distance to the known pixels "
                    "(docs/features.md); 0 = off")
        ->capture_default_str();
    cmd->add_option("--features", a.inversion.features,
                    "feature network for --feature-loss (default "
                    "data-cache/features/mobilenetv2.safetensors, from scripts/fetch-features.sh)");
    cmd->add_option("--save-every", a.inversion.save_every,
                    "write the reconstruction every N steps (<stem>-<image>-stepNNNNNN.png)");
    cmd->add_option("--fit-height", a.inversion.fit_height,
                    "resize input photos to this height first (about the model's training image "
                    "size); 0 = as they are")
        ->capture_default_str();
    cmd->add_option("--samples", a.samples, "how many different continuations")
        ->capture_default_str();
    cmd->add_option("-s,--seed", a.seed, "seed of the new latents (sample k uses seed + k)")
        ->capture_default_str();
    cmd->add_option("--tile", a.tile, "tile size in output pixels (0 = model default)");
    cmd->add_option("--batch", a.batch, "tiles per forward pass")->capture_default_str();
    cmd->add_option("--device", a.device, "cpu or cuda")->capture_default_str();
    cmd->add_option("--config", a.config, "config for weight files without igan metadata");
    cmd->add_flag("--no-blend", a.no_blend, "keep the generated pixels in the known region");
    cmd->add_flag("-q,--quiet", a.quiet, "no progress output");
    cmd->add_flag("--json", a.json, "print a JSON summary on stdout");
}

void check_seed(int64_t seed) {
    if (seed < 0) throw UsageError("--seed must be in [0, 9223372036854775807]");
}

int report(const InvertArgs& a, const igan::ApplicationResult& r) {
    if (a.json) {
        nlohmann::json j = {{"paths", r.paths},
                            {"initial_rmse", r.initial_rmse},
                            {"final_rmse", r.final_rmse},
                            {"perceptual", r.perceptual},
                            {"seconds", r.seconds}};
        std::cout << j.dump() << "\n";
    } else {
        for (const auto& p : r.paths) std::cout << p << "\n";
    }
    if (!a.quiet) {
        for (size_t i = 0; i < r.final_rmse.size(); ++i)
            std::fprintf(stderr, "inversion %zu: RMSE %.4f -> %.4f (on [-1, 1])\n", i,
                         r.initial_rmse[i], r.final_rmse[i]);
        if (r.perceptual.empty())
            std::fprintf(stderr, "note: no discriminator found for the perceptual loss; pixel loss "
                                 "only (see --perceptual)\n");
        std::fprintf(stderr, "done in %.1fs\n", r.seconds);
    }
    return 0;
}

// The fields outpaint and inbetween requests share.
template <class Request>
void fill_common(Request& r, const InvertArgs& a) {
    check_seed(a.seed);
    r.out = a.out;
    r.samples = a.samples;
    r.seed = uint64_t(a.seed);
    r.tile = a.tile;
    r.batch = a.batch;
    r.blend = !a.no_blend;
    r.inversion = a.inversion;
}

// Loads the model, runs one application with a progress bar and reports its result.
template <class Request, class Method>
int run_application(const InvertArgs& a, const char* name, const Request& r, Method method) {
    const igan::Engine engine(a.model, a.device, a.config);
    ProgressBar bar(name, a.quiet, 0, "steps");
    const auto result = (engine.*method)(r, [&](const igan::Progress& p) { bar.update(p); });
    bar.finish();
    return report(a, result);
}

struct OutpaintArgs {
    InvertArgs common;
    std::string input, mask, canvas;
};

int run_outpaint(const OutpaintArgs& o) {
    const auto& a = o.common;
    std::smatch m;
    static const std::regex geometry(R"((\d{1,6})x(\d{1,6})\+(\d{1,6})\+(\d{1,6}))");
    if (!std::regex_match(o.canvas, m, geometry))
        throw UsageError("--canvas '" + o.canvas +
                         "': expected WxH+X+Y (the output size and the input's top-left in it)");
    igan::OutpaintRequest r;
    fill_common(r, a);
    r.canvas_width = std::stoll(m[1]);
    r.canvas_height = std::stoll(m[2]);
    r.input_x = std::stoll(m[3]);
    r.input_y = std::stoll(m[4]);
    r.input = o.input;
    r.mask = o.mask;
    return run_application(a, "outpaint", r, &igan::Engine::outpaint);
}

struct InbetweenArgs {
    InvertArgs common;
    std::string left, right;
    int64_t gap = 0;
    double band = 0;
};

int run_inbetween(const InbetweenArgs& b) {
    const auto& a = b.common;
    igan::InbetweenRequest r;
    fill_common(r, a);
    r.left = b.left;
    r.right = b.right;
    r.gap = b.gap;
    r.band = b.band;
    return run_application(a, "inbetween", r, &igan::Engine::inbetween);
}

RegisterCommand reg_outpaint(24, [](CLI::App& app, Globals&) {
    auto args = std::make_shared<OutpaintArgs>();
    auto* cmd = app.add_subcommand(
        "outpaint", "extend a photo in every direction by GAN inversion (multi-modal)");
    add_inversion_options(cmd, args->common);
    cmd->add_option("--input", args->input, "the known image (PNG or JPEG)")->required();
    cmd->add_option("--mask", args->mask, "optional mask of the input's size: white = known");
    cmd->add_option("--canvas", args->canvas,
                    "WxH+X+Y: output size and where the input's top-left goes")
        ->required();
    return std::make_pair(cmd, Runner([args] { return run_outpaint(*args); }));
});

RegisterCommand reg_inbetween(25, [](CLI::App& app, Globals&) {
    auto args = std::make_shared<InbetweenArgs>();
    auto* cmd = app.add_subcommand(
        "inbetween", "join two photos with generated landscape across a gap of GAP pixels");
    add_inversion_options(cmd, args->common);
    cmd->add_option("--left", args->left, "left image (PNG or JPEG)")->required();
    cmd->add_option("--right", args->right, "right image (PNG or JPEG)")->required();
    cmd->add_option("--gap", args->gap, "pixels between the two images")->required();
    cmd->add_option("--band", args->band, "style transition width in pixels (0 = the gap)")
        ->capture_default_str();
    return std::make_pair(cmd, Runner([args] { return run_inbetween(*args); }));
});

}  // namespace
}  // namespace igan::cli
