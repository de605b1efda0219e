// `igan fuse`: spatial style fusion — several styles placed at points of one canvas.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "render_options.h"

namespace igan::cli {
namespace {

double parse_number(const std::string& text, const std::string& spec) {
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || !std::isfinite(v))
        throw UsageError("--styles '" + spec + "': '" + text + "' is not a number");
    return v;
}

// "seed@x,y;seed@x,y" with x, y in image pixels, or a JSON file
// [{"seed": 1, "x": 0, "y": 0}, ...].
std::vector<igan::StyleCentre> parse_styles(const std::string& spec) {
    std::vector<igan::StyleCentre> styles;
    if (spec.size() > 5 && spec.substr(spec.size() - 5) == ".json") {
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
    } else {
        std::stringstream ss(spec);
        std::string part;
        while (std::getline(ss, part, ';')) {
            if (part.empty()) continue;
            const auto at = part.find('@'), comma = part.find(',');
            if (at == std::string::npos || comma == std::string::npos || comma < at)
                throw UsageError("--styles '" + spec + "': expected seed@x,y;seed@x,y");
            const double seed = parse_number(part.substr(0, at), spec);
            if (seed < 0 || seed != std::floor(seed) || seed > 9.0e15)
                throw UsageError("--styles '" + spec + "': seeds are non-negative integers");
            styles.push_back({uint64_t(seed), parse_number(part.substr(at + 1, comma - at - 1), spec),
                              parse_number(part.substr(comma + 1), spec)});
        }
    }
    if (styles.size() < 1) throw UsageError("--styles is empty: give at least one seed@x,y");
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
    igan::validate_request(req, a.force);
    igan::check_output_path(a.out);
    const igan::Engine engine(a.model, a.device, a.config);
    engine.validate(req, a.force);
    render_with_progress(engine, req, a, "fuse");
    return 0;
}

RegisterCommand reg(22, [](CLI::App& app, Globals&) {
    auto args = std::make_shared<FuseArgs>();
    auto* cmd = app.add_subcommand(
        "fuse", "spatial style fusion: several styles, each ruling the pixels nearest its centre");
    add_common_render_options(cmd, args->render);
    cmd->add_option("-o,--out", args->render.out, "output PNG")->required();
    cmd->add_option("--styles", args->styles,
                    "seed@x,y;seed@x,y;... with x, y in output-image pixels, or a JSON file "
                    "[{\"seed\":1,\"x\":0,\"y\":0},...]")
        ->required();
    cmd->add_option("--band", args->band, "width of the transition between styles, in pixels")
        ->capture_default_str();
    return std::make_pair(cmd, Runner([args] { return run_fuse(*args); }));
});

}  // namespace
}  // namespace igan::cli
