// `igan bench`: speed against an in-run convolution peak, and memory.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"

namespace igan::cli {
namespace {

void print_table(const std::string& json_text) {
    const auto j = nlohmann::json::parse(json_text);
    for (auto it = j.begin(); it != j.end(); ++it)
        std::printf("%-28s %s\n", it.key().c_str(), it.value().dump().c_str());
}

RegisterCommand bench_reg(90, [](CLI::App& app, Globals& g) {
    auto r = std::make_shared<BenchRequest>();
    auto json = std::make_shared<bool>(false);
    auto no_rss = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("bench", "measure generation speed and memory");
    cmd->add_option("--config", r->config, "paper, tiny or a JSON file")->capture_default_str();
    cmd->add_option("--device", r->device, "cpu or cuda (on cuda: no --scaling, no RSS)")
        ->capture_default_str();
    cmd->add_option("--tile", r->tile, "tile size (0 = 256)")->capture_default_str();
    cmd->add_option("--batch", r->batch, "tiles per forward pass")->capture_default_str();
    cmd->add_option("--workers", r->workers, "forward passes at once (0 = one per thread)")
        ->capture_default_str();
    cmd->add_option("--repetitions", r->repetitions, "timed runs after a warm-up")
        ->capture_default_str();
    cmd->add_flag("--json", *json, "print one JSON object");
    cmd->add_flag("--no-rss", *no_rss, "skip the RSS measurements");
    cmd->add_flag("--profile", r->profile, "time every layer on its own");
    cmd->add_flag("--scaling", r->scaling, "also time 1 thread (thread_scaling)");
    cmd->add_option("--rss-small-width", r->rss_small_width, "small RSS canvas width")
        ->capture_default_str();
    cmd->add_option("--rss-small-height", r->rss_small_height,
                    "small RSS canvas height (0 = one strip of tiles)")
        ->capture_default_str();
    cmd->add_option("--rss-large-width", r->rss_large_width, "wide RSS strip width")
        ->capture_default_str();
    cmd->add_option("--rss-large-height", r->rss_large_height,
                    "wide RSS canvas height (0 = one strip of tiles)")
        ->capture_default_str();
    return std::make_pair(cmd, Runner([r, json, no_rss, &g] {
        r->threads = g.threads;
        r->measure_rss = !*no_rss;
        r->self_exe = g.self_exe;
        const auto out = run_bench(*r);
        if (*json) {
            std::cout << out << "\n";
        } else {
            print_table(out);
        }
        return 0;
    }));
});

RegisterCommand rss_reg(91, [](CLI::App& app, Globals& g) {
    struct Args {
        std::string config = "tiny";
        int64_t width = 1024, height = 1024, tile = 256, workers = 0;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = app.add_subcommand("bench-rss", "internal: peak RSS of one render");
    cmd->group("");
    cmd->add_option("--config", a->config);
    cmd->add_option("--width", a->width);
    cmd->add_option("--height", a->height);
    cmd->add_option("--tile", a->tile);
    cmd->add_option("--workers", a->workers);
    return std::make_pair(cmd, Runner([a, &g] {
        std::printf("%.1f\n", measure_render_rss(a->config, a->width, a->height, a->tile, g.threads,
                                                     a->workers));
        return 0;
    }));
});

}  // namespace
}  // namespace igan::cli
