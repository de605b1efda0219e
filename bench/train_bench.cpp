// Training speed (issue 16): iterations of one config on synthetic photos, per discriminator,
// with the wall time of every phase of a step. The trainer marks its phases with LibTorch's
// user scopes (RECORD_USER_SCOPE, free while nothing listens); this program listens and charges
// each scope its own time, less that of the scopes inside it, under its path ("step/g_step/
// backward"). The 3x3 512->512 convolution peak is timed in the same process, before and after,
// the better kept, so `step_peak_gflop` (seconds per step x peak GFLOP/s, lower is better) can be
// compared across runs on a loaded machine where it/s alone cannot.
//   build/igan_train_bench                          # tiny, batch 16, 1 thread, both Ds
//   build/igan_train_bench --runs projected:diffaug --iters 16 --repetitions 3 --ops 15 --json
// A run is KIND:AUGMENT (stylegan2 uses R1 every d_reg_every steps; projected has no R1, as
// `igan train` defaults). `--iters` should be a multiple of 16 so that each repetition holds
// whole lazy cycles (one R1 per 16 steps, one path-length step per 4). `--ops N` also lists the N
// (phase, operator) pairs with the most own time (slower: every operator is timed).
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <malloc.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/threads.h"
#include "features/mobilenet_v2.h"
#include "io/png.h"
#include "train/trainer.h"
#include "weights/config_file.h"

namespace {

namespace fs = std::filesystem;

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Minor page faults: pages the process touched for the first time (fresh allocations).
int64_t minor_faults() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return int64_t(u.ru_minflt);
}

double process_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Own time and calls per scope path (user scopes) or operator name (--ops), over all threads.
struct Totals {
    double seconds = 0;
    int64_t calls = 0;
};
struct Frame {
    std::string key;
    double start = 0, inner = 0;
};
std::mutex g_mutex;
std::map<std::string, Totals> g_phases, g_ops;
thread_local std::vector<Frame> t_scopes, t_ops;

std::vector<Frame>& stack_of(const at::RecordFunction& fn) {
    return fn.scope() == at::RecordScope::USER_SCOPE ? t_scopes : t_ops;
}

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
    auto& s = stack_of(fn);
    std::string key = fn.name();
    if (&s == &t_scopes && !s.empty()) key = s.back().key + "/" + key;
    // An operator is listed under the phase that issued it.
    if (&s == &t_ops && !t_scopes.empty()) key = t_scopes.back().key + " " + key;
    s.push_back({std::move(key), now(), 0});
    return nullptr;
}

void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
    auto& s = stack_of(fn);
    if (s.empty()) return;  // entered before the callback was added
    const Frame f = std::move(s.back());
    s.pop_back();
    const double elapsed = now() - f.start;
    if (!s.empty()) s.back().inner += elapsed;
    std::lock_guard<std::mutex> lock(g_mutex);
    auto& t = (&s == &t_scopes ? g_phases : g_ops)[f.key];
    t.seconds += elapsed - f.inner;
    ++t.calls;
}

// 2 x MACs / s of the convolution, the best of `reps` (after one warm-up).
double conv_peak_gflops(int reps) {
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({1, 512, 64, 64}), w = torch::randn({512, 512, 3, 3});
    double best = 1e30;
    for (int i = 0; i <= reps; ++i) {
        const double t0 = now();
        torch::conv2d(x, w);
        if (i > 0) best = std::min(best, now() - t0);
    }
    return 2e-9 * 512 * 512 * 9 * 62 * 62 / best;
}

// Smooth gradients with texture, 4:3 and larger than the full image, as photos are after the
// dataset's downscale: the crop-and-resize path is the real one.
std::string write_photos(int count, int64_t w, int64_t h) {
    const fs::path dir = fs::temp_directory_path() / ("igan_train_bench_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::vector<uint8_t> px(size_t(w * h * 3));
    for (int k = 0; k < count; ++k) {
        for (int64_t y = 0; y < h; ++y)
            for (int64_t x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c)
                    px[size_t((y * w + x) * 3 + c)] = uint8_t(
                        (y < h / 3 ? 150 + y * 90 / h : (x * (7 + k) + y * 13 + 40 * c) % 160) + 10 * c);
        igan::PngWriter png((dir / ("photo" + std::to_string(k) + ".png")).string(), w, h, {});
        png.write_rows(px.data(), h);
        png.finish();
    }
    return dir.string();
}

struct Run {
    std::string kind, augment;
};

struct Settings {
    std::string config = "tiny", features = igan::kDefaultFeaturesPath;
    int64_t batch = 16, iters = 16, warmup = 1;
    int threads = 1, repetitions = 1, ops = 0;
    double augment_p = 0.25;
    bool json = false;
    std::vector<Run> runs = {{"stylegan2", "ada"}, {"projected", "diffaug"}};
};

igan::TrainOptions train_options(const Settings& s, const Run& run, const std::string& data,
                                 std::string& features_source) {
    igan::TrainOptions o;
    o.model = igan::load_model_config(s.config);
    o.data.folder = data;
    o.data.full_size = o.model.generator.full_size;
    o.data.patch_size = o.model.generator.patch_size();
    o.batch = s.batch;
    o.seed = 1;
    o.discriminator = igan::parse_discriminator_kind(run.kind);
    o.augment = igan::parse_augment_mode(run.augment);
    o.augment_p = s.augment_p;
    // As `igan train` defaults: R1 for the StyleGAN2 D only.
    o.r1 = o.discriminator == igan::DiscriminatorKind::kProjected ? 0.0 : 10.0;
    if (o.discriminator != igan::DiscriminatorKind::kStyleGan2) {
        // Random weights cost what the pretrained ones do.
        const bool file = fs::exists(s.features);
        o.features = file ? igan::load_mobilenet_v2(s.features) : igan::MobileNetV2Features();
        features_source = file ? s.features : "random";
    }
    auto& group = o.model.discriminator.stddev_group;
    group = int(std::min<int64_t>(group, s.batch));
    while (s.batch % group != 0) --group;
    return o;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int usage() {
    std::fprintf(stderr,
                 "usage: igan_train_bench [--config NAME] [--batch B] [--threads T] [--iters N]\n"
                 "  [--warmup N] [--repetitions R] [--runs KIND:AUG,...] [--augment-p P]\n"
                 "  [--features PATH] [--ops N] [--json]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    // As igan's main does: activations stay in the heap instead of fresh mappings.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    Settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        if (k == "--json") {
            s.json = true;
            continue;
        }
        if (i + 1 >= argc) return usage();
        const std::string v = argv[++i];
        if (k == "--config") s.config = v;
        else if (k == "--batch") s.batch = std::atoll(v.c_str());
        else if (k == "--threads") s.threads = std::atoi(v.c_str());
        else if (k == "--iters") s.iters = std::atoll(v.c_str());
        else if (k == "--warmup") s.warmup = std::atoll(v.c_str());
        else if (k == "--repetitions") s.repetitions = std::atoi(v.c_str());
        else if (k == "--augment-p") s.augment_p = std::atof(v.c_str());
        else if (k == "--features") s.features = v;
        else if (k == "--ops") s.ops = std::atoi(v.c_str());
        else if (k == "--runs") {
            s.runs.clear();
            for (size_t a = 0; a <= v.size();) {
                const size_t b = std::min(v.find(',', a), v.size());
                const std::string item = v.substr(a, b - a);
                const size_t colon = item.find(':');
                s.runs.push_back({item.substr(0, colon),
                                  colon == std::string::npos ? "diffaug" : item.substr(colon + 1)});
                a = b + 1;
            }
        } else
            return usage();
    }
    if (s.batch < 2 || s.iters < 1 || s.threads < 1 || s.repetitions < 1 || s.runs.empty())
        return usage();
    try {
        igan::set_process_intra_op_threads(s.threads);
        igan::set_blas_threads(s.threads);
        const std::string data = write_photos(40, 400, 300);
        struct Bench {
            Run run;
            std::string features;
            std::unique_ptr<igan::Trainer> trainer;
            std::vector<double> wall, cpu;  // per repetition, seconds per step
            int64_t faults = 0;
            std::map<std::string, Totals> phases, ops;
        };
        std::vector<Bench> benches;
        for (const auto& run : s.runs) {
            Bench b;
            b.run = run;
            b.trainer = std::make_unique<igan::Trainer>(train_options(s, run, data, b.features));
            for (int64_t i = 0; i < s.warmup; ++i) b.trainer->step();
            benches.push_back(std::move(b));
        }
        double peak = conv_peak_gflops(3);
        auto handle = at::addGlobalCallback(
            at::RecordFunctionCallback(on_enter, on_exit)
                .scopes(s.ops > 0 ? std::unordered_set<at::RecordScope, std::hash<at::RecordScope>>{
                                        at::RecordScope::USER_SCOPE, at::RecordScope::FUNCTION,
                                        at::RecordScope::BACKWARD_FUNCTION}
                                  : std::unordered_set<at::RecordScope, std::hash<at::RecordScope>>{
                                        at::RecordScope::USER_SCOPE}));
        // Runs alternate within each repetition, so a change of machine load hits them alike.
        for (int r = 0; r < s.repetitions; ++r)
            for (auto& b : benches) {
                {
                    std::lock_guard<std::mutex> lock(g_mutex);
                    g_phases.clear();
                    g_ops.clear();
                }
                const double w0 = now(), c0 = process_cpu_seconds();
                const int64_t f0 = minor_faults();
                for (int64_t i = 0; i < s.iters; ++i) {
                    RECORD_USER_SCOPE("step");
                    b.trainer->step();
                }
                b.wall.push_back((now() - w0) / double(s.iters));
                b.cpu.push_back((process_cpu_seconds() - c0) / double(s.iters));
                b.faults += minor_faults() - f0;
                std::lock_guard<std::mutex> lock(g_mutex);
                for (const auto& [k, t] : g_phases) b.phases[k].seconds += t.seconds, b.phases[k].calls += t.calls;
                for (const auto& [k, t] : g_ops) b.ops[k].seconds += t.seconds, b.ops[k].calls += t.calls;
            }
        at::removeCallback(handle);
        peak = std::max(peak, conv_peak_gflops(3));

        for (const auto& b : benches) {
            const double steps = double(s.iters * s.repetitions), spi = median(b.wall);
            nlohmann::json j = {{"config", s.config},
                                {"batch", s.batch},
                                {"threads", s.threads},
                                {"discriminator", b.run.kind},
                                {"augment", b.run.augment},
                                {"features", b.features},
                                {"iters", s.iters},
                                {"repetitions", s.repetitions},
                                {"it_per_s", 1 / spi},
                                {"it_per_s_each", nlohmann::json::array()},
                                {"cpu_s_per_it", median(b.cpu)},
                                {"minor_faults_per_it", double(b.faults) / steps},
                                {"peak_gflops", peak},
                                {"step_peak_gflop", spi * peak}};
            for (double w : b.wall) j["it_per_s_each"].push_back(1 / w);
            std::vector<std::pair<std::string, Totals>> rows(b.phases.begin(), b.phases.end());
            for (const auto& [k, t] : rows)
                j["phases"][k] = {{"ms_per_it", 1e3 * t.seconds / steps}, {"calls_per_it", t.calls / steps}};
            std::vector<std::pair<std::string, Totals>> ops(b.ops.begin(), b.ops.end());
            std::sort(ops.begin(), ops.end(),
                      [](const auto& a, const auto& c) { return a.second.seconds > c.second.seconds; });
            ops.resize(std::min<size_t>(ops.size(), size_t(s.ops)));
            for (const auto& [k, t] : ops)
                j["ops"].push_back({{"op", k}, {"ms_per_it", 1e3 * t.seconds / steps},
                                    {"calls_per_it", t.calls / steps}});
            if (s.json) {
                std::printf("%s\n", j.dump().c_str());
                continue;
            }
            std::printf("%s + %s (features %s), %s, batch %lld, %d thread(s): %.3f it/s (median of %d "
                        "x %lld steps), %.0f ms CPU/it, %.0f page faults/it, peak %.1f GFLOP/s, step = %.1f peak "
                        "GFLOP\n",
                        b.run.kind.c_str(), b.run.augment.c_str(), b.features.empty() ? "-" : b.features.c_str(),
                        s.config.c_str(), (long long)s.batch, s.threads, 1 / spi, s.repetitions,
                        (long long)s.iters, 1e3 * median(b.cpu), double(b.faults) / steps, peak, spi * peak);
            const double total = 1e3 * std::accumulate(b.wall.begin(), b.wall.end(), 0.0) / double(s.repetitions);
            std::printf("  %-40s %9s %6s %8s\n", "phase (own time)", "ms/it", "%", "calls/it");
            for (const auto& [k, t] : rows)
                std::printf("  %-40s %9.1f %6.1f %8.2f\n", k.c_str(), 1e3 * t.seconds / steps,
                            100 * 1e3 * t.seconds / steps / total, t.calls / steps);
            for (const auto& [k, t] : ops)
                std::printf("  %-40s %9.1f %6.1f %8.2f\n", k.c_str(), 1e3 * t.seconds / steps,
                            100 * 1e3 * t.seconds / steps / total, t.calls / steps);
        }
        fs::remove_all(data);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "igan_train_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
