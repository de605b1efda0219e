// `igan fuse`: spatial style fusion — several styles placed at points of one canvas.
#include <fstream>
#include <nlohmann/json.hpp>

#include "render_options.h"

namespace igan::cli {
namespace {

// SEED:X:Y,SEED:X:Y with X, Y in image pixels (igan::parse_style_centres), or a JSON file
// [{"seed": 1, "x": 0, "y": 0}, ...].
std::vector<igan::StyleCentre> parse_styles(const std::string& spec) {
    if (spec.size() <= 5 || spec.substr(spec.size() - 5) != ".json")
        return igan::parse_style_centres(spec);
    std::vector<igan::StyleCentre> styles;
    std::ifstream in(spec);
    if (!in) throw UsageError("--styles: cannot read " + spec);
    try {
        for (const auto& j : nlohmann::json::parse(in))
            styles.push_back({j.at("seed").get<uint64_t>(), j.at("x").get<double>(),
                              j.at("y").get<double>()});
    } catch (const nlohmann::json::exception& e) {
        throw UsageError("--styles " + spec + ": expected [{\"seed\":1,\"x\":0,\"y\":0},...] (" +
                         e.what() + ")");
    }
    if (styles.empty())
        throw UsageError("--styles " + spec + " is empty: give at least one centre");
    return styles;
}

struct FuseArgs {
    GenerateArgs render;
    std::string styles;
    double band = 128;
};

int run_fuse(const FuseArgs& f) {
    const auto& a = f.render;
    if (a.out.empty()) throw UsageError("fuse needs --out FILE.png");
    auto req = make_request(a, resolve_seed(a.seed, a.quiet), a.out);
    for (auto s : parse_styles(f.styles)) {
        s.x += double(req.x);  // image pixels -> canvas pixels
        s.y += double(req.y);
        req.styles.push_back(s);
    }
    req.style_band = f.band;
    const auto checked = igan::validate_request(req, a.force);
    igan::check_output_path(a.out);
    const igan::Engine engine(a.model, a.device, a.config, a.precision);
    render_with_progress(engine, engine.prepare(checked), a, "fuse");
    return 0;
}

RegisterCommand reg(22, [](CLI::App& app, Globals&) {
    auto args = std::make_shared<FuseArgs>();
    auto* cmd = app.add_subcommand(
        "fuse", "spatial style fusion: several styles, each ruling the pixels nearest its centre");
    add_common_render_options(cmd, args->render);
    cmd->add_option("-o,--out", args->render.out, "output PNG")->required();
    cmd->add_option("--styles", args->styles,
                    "SEED:X:Y,SEED:X:Y,... with X, Y in output-image pixels (the older "
                    "SEED@X,Y;SEED@X,Y works too), or a JSON file "
                    "[{\"seed\":1,\"x\":0,\"y\":0},...]")
        ->required();
    cmd->add_option("--band", args->band, "width of the transition between styles, in pixels")
        ->capture_default_str();
    return std::make_pair(cmd, Runner([args] { return run_fuse(*args); }));
});

}  // namespace
}  // namespace igan::cli
