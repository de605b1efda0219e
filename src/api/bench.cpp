// `igan bench`: generation speed against a convolution peak measured in the same run, and peak
// RSS of a small and a wide render measured in child processes (peak RSS only grows).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/generator.h"
#include "render/styled_generator.h"
#include "render/renderer.h"

namespace igan {

namespace {

using Clock = std::chrono::steady_clock;

template <typename Fn>
std::vector<double> time_runs(int reps, Fn&& fn) {
    fn();  // warm-up
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const auto s = Clock::now();
        fn();
        t.push_back(std::chrono::duration<double>(Clock::now() - s).count());
    }
    std::sort(t.begin(), t.end());
    return t;
}

double median(const std::vector<double>& v) { return v[v.size() / 2]; }

// GFLOP/s of a 3x3 512->512 convolution on a 64x64 map: the practical ceiling for G_T's layers.
double conv_peak_gflops(int reps) {
    torch::NoGradGuard no_grad;
    auto x = torch::randn({1, 512, 64, 64});
    auto w = torch::randn({512, 512, 3, 3});
    const double flop = 2.0 * 512 * 512 * 9 * 62 * 62;
    const auto t = time_runs(reps, [&] { torch::conv2d(x, w); });
    return flop / t.front() * 1e-9;
}

// A random-initialised generator styled by seed 0: the bench measures cost, not quality.
std::unique_ptr<StyledGenerator> random_generator(const GeneratorConfig& c) {
    Generator g(c);
    g->eval();
    return StyledGenerator::for_seed(g, torch::kCPU, 0);
}

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;
}

double child_rss(const std::string& exe, const std::string& config, int64_t w, int64_t h,
                 int64_t tile, int threads) {
    const std::string cmd = "'" + exe + "' bench-rss --config " + config + " --width " +
                            std::to_string(w) + " --height " + std::to_string(h) + " --tile " +
                            std::to_string(tile) + " --threads " + std::to_string(threads);
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return -1;
    double mb = -1;
    if (fscanf(p, "%lf", &mb) != 1) mb = -1;
    return pclose(p) == 0 ? mb : -1;
}

constexpr int64_t kRssStripRows = 2;  // strips rendered per RSS measurement (memory is per strip)

}  // namespace

double measure_render_rss(const std::string& config, int64_t width, int64_t height, int64_t tile,
                          int threads) {
    set_threads(threads);
    torch::NoGradGuard no_grad;
    auto model = random_generator(load_model_config(config).generator);
    RenderOptions o;
    o.tile = tile;
    std::vector<uint8_t> strip(size_t(3 * width * tile));
    render_tiles(
        *model, {0, 0, width, height}, o,
        [&](const Rect& t, const torch::Tensor& rgb) {
            quantize_into(rgb, strip.data(), 3 * width, t.x);
        },
        [](int64_t, int64_t) {});
    return peak_rss_mb();
}

std::string run_bench(const BenchRequest& r) {
    set_threads(r.threads);
    torch::NoGradGuard no_grad;
    const ModelConfig config = load_model_config(r.config);
    const int64_t tile = r.tile > 0 ? r.tile : 256;
    const int reps = std::max(1, r.repetitions);
    auto model = random_generator(config.generator);
    const CanvasGeometry geo(config.generator);
    const int64_t batch = std::max<int64_t>(1, r.batch);
    const Rect rect{0, 0, tile * batch, tile};
    RenderOptions o;
    o.tile = tile;
    o.batch = batch;
    const auto t = time_runs(reps, [&] { render_region(*model, rect, o); });
    const int64_t n = geo.window_for(tile);
    const double flop_per_tile = 2.0 * generator_macs(config.generator, n);
    const double tiles_per_s = batch / median(t);
    const double gflops = flop_per_tile * tiles_per_s * 1e-9;
    const double peak = conv_peak_gflops(reps);
    const int64_t out = geo.output_size(n);
    nlohmann::json j = {
        {"config", r.config},
        {"tile", tile},
        {"batch", batch},
        {"threads", at::get_num_threads()},
        {"repetitions", reps},
        {"tiles_per_s", tiles_per_s},
        {"mp_per_s", tiles_per_s * tile * tile * 1e-6},
        {"seconds_per_tile_min", t.front() / batch},
        {"seconds_per_tile_median", median(t) / batch},
        {"seconds_per_tile_max", t.back() / batch},
        {"gflop_per_tile", flop_per_tile * 1e-9},
        {"gflops", gflops},
        {"peak_gflops", peak},
        {"fraction_of_peak", gflops / peak},
        // Work per useful pixel relative to a margin-free generator (1.0 = no recomputation).
        {"macs_overhead_vs_no_margin", double(out) * out / double(tile * tile)},
    };
    if (r.measure_rss && !r.self_exe.empty()) {
        const int64_t rows = kRssStripRows * tile;
        j["rss_mb_small"] = child_rss(r.self_exe, r.config, 1024, std::min<int64_t>(1024, rows), tile,
                                      at::get_num_threads());
        j["rss_mb_large"] = child_rss(r.self_exe, r.config, 8192, std::min<int64_t>(8192, rows), tile,
                                      at::get_num_threads());
        j["rss_rows_rendered"] = std::min<int64_t>(1024, rows);
    }
    return j.dump();
}

}  // namespace igan
