// `igan bench`: generation speed against a convolution peak measured in the same run, and the
// peak RSS of one render (the CLI runs that in child processes: peak RSS only grows).
#include <sys/resource.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/device.h"
#include "core/error.h"
#include "core/threads.h"
#include "igan/bench.h"
#include "model/generator.h"
#include "model/layer_clock.h"
#include "model/layers.h"
#include "model/precision.h"
#include "render/canvas.h"
#include "render/styled_generator.h"
#include "render/renderer.h"
#include "weights/config_file.h"

namespace igan {

namespace {

using Clock = std::chrono::steady_clock;

template <typename Fn>
std::vector<double> time_runs(int reps, Fn&& fn, bool warm_up = true) {
    if (warm_up) fn();
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

// Timings on a GPU wait for its queue to drain.
void finish(const torch::Device& device) {
    if (device.is_cuda()) torch::cuda::synchronize();
}

// GFLOP/s of a 3x3 512->512 convolution on a 64x64 map: the practical ceiling for G_T's layers,
// in the convolutions' dtype of this thread (model/precision.h). A GPU gets a batch of 16,
// enough to fill it.
double conv_peak_gflops(int reps, const torch::Device& device) {
    torch::NoGradGuard no_grad;
    const int64_t batch = device.is_cuda() ? 16 : 1;
    const auto options = torch::TensorOptions().device(device).dtype(conv_dtype());
    auto x = torch::randn({batch, 512, 64, 64}, options);
    auto w = torch::randn({512, 512, 3, 3}, options);
    const double flop = 2.0 * batch * 512 * 512 * 9 * 62 * 62;
    const auto t = time_runs(reps, [&] {
        torch::conv2d(x, w);
        finish(device);
    });
    return flop / t.front() * 1e-9;
}

// A random-initialised generator styled by seed 0: the bench measures cost, not quality.
std::unique_ptr<StyledGenerator> random_generator(const GeneratorConfig& c,
                                                  const torch::Device& device) {
    Generator g(c);
    g->eval();
    g->to(device);
    return StyledGenerator::for_seed(g, device, 0);
}

// The runs' threads for LibTorch and the BLAS (<= 0: every core).
void use_threads(int threads) {
    const int n = threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency()));
    set_process_intra_op_threads(n);
    set_blas_threads(n);
}

double peak_rss_mb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;
}

// Every layer of one tile's forward pass timed on its own (same inputs as the real pass), with
// its GFLOP/s against the in-run peak: where the time goes.
nlohmann::json profile_layers(const GeneratorConfig& c, int64_t n, int reps, double peak,
                              const torch::Device& device) {
    Generator g(c);
    g->eval();
    g->to(device);
    auto inputs = make_patch_batch(c, CanvasFields{}, {{0, 0}}, n);
    inputs.local_latent = inputs.local_latent.to(device);
    inputs.coords = inputs.coords.to(device);
    for (auto& noise : inputs.noises) noise = noise.to(device);
    auto z = global_latent_for_seed(0, c.global_latent_dim).to(device);
    auto style = g->texture_synthesizer->mapping(z);
    nlohmann::json layers = nlohmann::json::array();
    double total = 0;
    auto add = [&](const std::string& name, const torch::Tensor& in, const torch::Tensor& out,
                   double macs, const std::function<void()>& fn) {
        const double s = time_runs(reps, [&] {
                             fn();
                             finish(device);
                         }).front();
        total += s;
        layers.push_back({{"layer", name},
                          {"in", in.sizes().vec()},
                          {"out", out.sizes().vec()},
                          {"gflop", 2e-9 * macs},
                          {"seconds", s},
                          {"gflops", 2e-9 * macs / s},
                          {"fraction_of_peak", 2e-9 * macs / s / peak}});
    };
    auto& ss = g->structure_synthesizer;
    auto x = inputs.local_latent;
    for (size_t i = 0; i < ss->blocks.size(); ++i) {
        auto cc = center_crop(inputs.coords, x.size(-2), x.size(-1));
        auto in = torch::cat({x, cc}, 1);
        auto y = ss->blocks[i]->conv(in, z);
        const auto& w = ss->blocks[i]->conv->conv->weight;
        add("ss" + std::to_string(i), in, y,
            double(y.numel()) * w.size(2) * w.size(3) * w.size(4),
            [&] { ss->blocks[i]->conv(in, z); });
        x = y;
    }
    auto& ts = g->texture_synthesizer;
    const auto src = c.to_rgb_src_conv();
    torch::Tensor rgb;
    size_t k = 0;
    for (int i = 0; i < c.num_ts_convs(); ++i) {
        auto& conv = ts->convs[i];
        auto y = conv(x, style, inputs.noises[i]);
        const double macs = double(x.size(1)) * y.size(1) * 9 *
                            (i % 2 == 0 ? double(x.size(2)) * x.size(3) : double(y.size(2)) * y.size(3));
        add("ts" + std::to_string(i) + (i % 2 == 0 ? " up" : ""), x, y, macs,
            [&] { conv(x, style, inputs.noises[i]); });
        x = y;
        if (k < src.size() && src[k] == i) {
            auto r = ts->to_rgbs[k](x, style, rgb);
            add("to_rgb" + std::to_string(k), x, r, double(x.size(1)) * 3 * x.size(2) * x.size(3),
                [&] { ts->to_rgbs[k](x, style, rgb); });
            rgb = r;
            ++k;
        }
    }
    return {{"layers", layers}, {"layers_seconds", total}};
}

// Per layer kind, GFLOP per thread-second against the peak's share of one thread: the 3x3 and
// up layers as the layer clock timed them in the render, `other` the structure synthesizer and
// ToRGB's FLOP over all the rest of the runs' thread time (fields, noise, stitching included),
// so a regression shows where it is. time_share_*: each kind's part of the thread time.
void add_kind_fractions(nlohmann::json& j, const LayerClockTotals& c, const std::vector<double>& t,
                        int threads, double peak, double flop_per_run) {
    double wall = 0;
    for (double s : t) wall += s;
    const double thread_seconds = wall * threads, per_thread_peak = peak / threads;
    const double flop[3] = {2 * c.macs[0], 2 * c.macs[1],
                            flop_per_run * double(t.size()) - 2 * (c.macs[0] + c.macs[1])};
    const double seconds[3] = {c.thread_seconds[0], c.thread_seconds[1],
                               thread_seconds - c.thread_seconds[0] - c.thread_seconds[1]};
    const char* names[3] = {"3x3", "up", "other"};
    for (int k = 0; k < 3; ++k) {
        const std::string name = names[k];
        j["fraction_" + name] = seconds[k] > 0 ? flop[k] * 1e-9 / seconds[k] / per_thread_peak : 0.0;
        j["time_share_" + name] = seconds[k] / thread_seconds;
    }
}

}  // namespace

double measure_render_rss(const std::string& config, int64_t width, int64_t height, int64_t tile,
                          int threads, int64_t workers) {
    use_threads(threads);
    torch::NoGradGuard no_grad;
    auto model = random_generator(load_model_config(config).generator, torch::kCPU);
    RenderOptions o;
    o.tile = tile;
    o.workers = workers;
    o.max_tile_height = streaming_tile_height_cap(width);  // as igan generate does
    // The path igan generate takes: double-buffered strips handed to a consumer thread.
    render_rows(*model, {0, 0, width, height}, o, [](const uint8_t*, int64_t, int64_t) {});
    return peak_rss_mb();
}

// MACs per output pixel of a tile relative to the margin-free limit (an endless tile), and the
// two MAC counts per pixel.
struct MarginCost {
    double per_pixel = 0, limit = 0;
};
MarginCost margin_cost(const GeneratorConfig& c, int64_t tile) {
    const CanvasGeometry geo(c);
    const int64_t big = int64_t(1) << 20;
    const double limit = generator_macs(c, big) / (double(geo.upscale()) * big * geo.upscale() * big);
    return {generator_macs(c, geo.window_for(tile)) / (double(tile) * tile), limit};
}

std::string run_bench(const BenchRequest& r) {
    use_threads(r.threads);
    const int threads = at::get_num_threads();
    torch::NoGradGuard no_grad;
    const ModelConfig config = load_model_config(r.config);
    const int64_t tile = r.tile > 0 ? r.tile : 256;
    const int reps = std::max(1, r.repetitions);
    const torch::Device device = parse_device(r.device);
    const Precision precision = parse_precision(r.precision);
    check_precision(precision, device);
    if (device.is_cuda()) use_cuda_math(precision);
    // The peak and the per-layer profile run in the renders' precision too.
    const PrecisionScope in_precision(precision);
    auto model = random_generator(config.generator, device);
    const CanvasGeometry geo(config.generator);
    const int64_t batch = std::max<int64_t>(1, r.batch);
    // One strip with a forward pass for every worker: the unit of work that keeps them all busy.
    // Cheap tiles get longer strips (a run of at least a second), so that starting the worker
    // threads weighs no more than it does in a real render.
    RenderOptions o;
    o.tile = tile;
    o.batch = batch;
    o.workers = r.workers;
    o.precision = precision;
    const int64_t workers = concurrent_passes(o, *model);
    const Rect unit{0, 0, tile * batch * workers, tile};
    const auto warm = Clock::now();
    render_region(*model, unit, o);
    const double unit_seconds = std::chrono::duration<double>(Clock::now() - warm).count();
    const int64_t strips = std::clamp<int64_t>(int64_t(std::ceil(1.0 / unit_seconds)), 1, 16);
    const int64_t tiles = batch * workers * strips;
    const Rect rect{0, 0, tile * tiles, tile};
    // The peak is measured before and after the generator and the better one kept: on a shared
    // machine this makes the fraction conservative rather than flattering.
    const double peak_before = conv_peak_gflops(reps, device);
    // The sizing run above was the warm-up. The layer clock times the texture synthesizer's
    // layers inside these runs (on a GPU it would time kernel launches only).
    layer_clock_enable(device.is_cpu());
    const auto t = time_runs(reps, [&] { render_region(*model, rect, o); }, false);
    layer_clock_enable(false);
    const double peak = std::max(peak_before, conv_peak_gflops(reps, device));
    const int64_t n = geo.window_for(tile);
    const double flop_per_tile = 2.0 * generator_macs(config.generator, n);
    const double tiles_per_s = tiles / median(t);
    const double gflops = flop_per_tile * tiles_per_s * 1e-9;
    const auto cost = margin_cost(config.generator, tile);
    nlohmann::json overhead;
    for (int64_t size : {128, 256, 512, 1024, 2048, 4096})
        overhead[std::to_string(size)] = margin_cost(config.generator, size).per_pixel / cost.limit;
    nlohmann::json j = {
        {"config", r.config},
        {"device", device.str()},
        {"precision", precision_name(precision)},
        {"tile", tile},
        {"batch", batch},
        {"threads", threads},
        {"workers", workers},
        {"tiles_per_run", tiles},
        {"repetitions", reps},
        {"tiles_per_s", tiles_per_s},
        {"mp_per_s", tiles_per_s * tile * tile * 1e-6},
        {"seconds_per_tile_min", t.front() / tiles},
        {"seconds_per_tile_median", median(t) / tiles},
        {"seconds_per_tile_max", t.back() / tiles},
        {"gflop_per_tile", flop_per_tile * 1e-9},
        {"gflops", gflops},
        {"gflops_best", flop_per_tile * tiles / t.front() * 1e-9},
        {"peak_gflops", peak},
        {"fraction_of_peak", gflops / peak},
        // MACs per useful output pixel (the padding-free margin every tile recomputes) over the
        // margin-free limit, for this tile and for a range of tiles.
        {"macs_per_pixel", cost.per_pixel},
        {"macs_per_pixel_no_margin", cost.limit},
        {"macs_overhead_vs_no_margin", cost.per_pixel / cost.limit},
        {"macs_overhead_by_tile", overhead},
    };
    if (device.is_cuda()) j["cuda_up"] = upsample_form_name(cuda_upsample_form());
    if (device.is_cpu()) add_kind_fractions(j, layer_clock_totals(), t, threads, peak,
                                            flop_per_tile * double(tiles));
    if (r.scaling && threads > 1 && device.is_cpu()) {
        // The same strip on one thread (one pass at a time).
        use_threads(1);
        RenderOptions one = o;
        one.workers = 1;
        const auto t1 = time_runs(reps, [&] { render_region(*model, rect, one); });
        // The convolution's own 1 -> 2 thread scaling on this machine, as the yardstick.
        const double peak_1_thread = conv_peak_gflops(reps, device);
        use_threads(threads);
        j["tiles_per_s_1_thread"] = tiles / median(t1);
        j["thread_scaling"] = median(t1) / median(t);
        j["peak_gflops_1_thread"] = peak_1_thread;
        j["peak_thread_scaling"] = peak / peak_1_thread;
    }
    if (r.profile) j["profile"] = profile_layers(config.generator, n, reps, peak, device);
    return j.dump();
}

}  // namespace igan
