// igan: command-line front end. Exit codes: 0 success, 1 failure, 2 bad usage.
#include <igan/igan.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <random>
#include <unistd.h>

#include "progress.h"

namespace {

using igan::UsageError;

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

int run_inspect(const std::string& model, const std::string& config, bool json) {
    const igan::Engine engine(model, "cpu", config);
    const auto& s = engine.summary();
    if (json) {
        std::printf(
            "{\"path\":\"%s\",\"sha256\":\"%s\",\"config_name\":\"%s\",\"parameters\":%lld,"
            "\"patch_size\":%lld,\"gflop_per_patch\":%.3f,\"default_tile\":%lld,"
            "\"gflop_per_tile\":%.3f,\"step\":%lld,\"config\":%s}\n",
            s.path.c_str(), s.sha256.c_str(), s.config_name.c_str(), (long long)s.parameters,
            (long long)s.patch_size, s.gflop_per_patch, (long long)s.default_tile,
            s.gflop_per_tile, (long long)s.step, s.config_json.c_str());
        return 0;
    }
    std::printf("model:        %s\nsha256:       %s\nconfig:       %s\nparameters:   %lld\n"
                "patch:        %lld px (%.2f GFLOP)\ntile:         %lld px default "
                "(%.2f GFLOP per tile)\nlatent cell:  %lld px\ntrained:      %lld steps\n"
                "config json:  %s\n",
                s.path.c_str(), s.sha256.c_str(), s.config_name.c_str(), (long long)s.parameters,
                (long long)s.patch_size, s.gflop_per_patch, (long long)s.default_tile,
                s.gflop_per_tile, (long long)s.upscale, (long long)s.step, s.config_json.c_str());
    return 0;
}

std::string self_exe(const char* argv0) {
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, size_t(n)) : std::string(argv0);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"igan: infinite-pixel image synthesis (InfinityGAN in C++)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", [] { return igan::version_report(); });
    int threads = 0;
    app.add_option("--threads", threads, "CPU threads (0 = all cores)")
        ->capture_default_str();

    igan::InitRequest init;
    auto* init_cmd = app.add_subcommand("init", "write a randomly initialised model");
    init_cmd->add_option("--config", init.config, "paper, tiny, golden or a JSON file")
        ->capture_default_str();
    init_cmd->add_option("-s,--seed", init.seed, "initialisation seed")->capture_default_str();
    init_cmd->add_option("-o,--out", init.out, "output .safetensors")->required();

    GenerateArgs gen;
    auto* gen_cmd = app.add_subcommand("generate", "render a rectangle of the endless canvas to PNG");
    add_common_render_options(gen_cmd, gen);
    gen_cmd->add_option("-o,--out", gen.out, "output PNG");
    gen_cmd->add_option("--seeds", gen.seeds, "several seeds, e.g. 0-31,42 (with --outdir)");
    gen_cmd->add_option("--outdir", gen.outdir, "folder for --seeds outputs (seedNNNN.png)");
    gen_cmd->add_option("--cyclic-width", gen.cyclic_width,
                        "make the canvas horizontally periodic with this period in pixels");

    std::string inspect_model, inspect_config;
    bool inspect_json = false;
    auto* inspect_cmd = app.add_subcommand("inspect", "print a model's config, size and cost");
    inspect_cmd->add_option("model", inspect_model, "model weights")->required();
    inspect_cmd->add_option("--config", inspect_config, "config for files without igan metadata");
    inspect_cmd->add_flag("--json", inspect_json, "JSON output");

    igan::ForwardRequest fwd;
    auto* fwd_cmd = app.add_subcommand(
        "forward", "run the networks on explicit inputs (golden-reference naming)");
    fwd_cmd->add_option("-m,--model", fwd.model, "generator weights")->required();
    fwd_cmd->add_option("--inputs", fwd.inputs, "inputs .safetensors")->required();
    fwd_cmd->add_option("-o,--out", fwd.out, "outputs .safetensors")->required();
    fwd_cmd->add_option("--discriminator", fwd.discriminator, "discriminator weights (optional)");
    fwd_cmd->add_option("--config", fwd.config_override, "config for files without igan metadata");

    igan::BenchRequest bench;
    bool bench_json = false;
    auto* bench_cmd = app.add_subcommand("bench", "measure generation speed and memory");
    bench_cmd->add_option("--config", bench.config, "paper, tiny or a JSON file")
        ->capture_default_str();
    bench_cmd->add_option("--tile", bench.tile, "tile size (0 = 256)")->capture_default_str();
    bench_cmd->add_option("--batch", bench.batch, "tiles per forward pass")->capture_default_str();
    bench_cmd->add_option("--repetitions", bench.repetitions, "timed runs after a warm-up")
        ->capture_default_str();
    bench_cmd->add_flag("--json", bench_json, "print one JSON object");
    bool no_rss = false;
    bench_cmd->add_flag("--no-rss", no_rss, "skip the RSS measurements");

    std::string rss_config = "tiny";
    int64_t rss_w = 1024, rss_h = 1024, rss_tile = 256;
    auto* rss_cmd = app.add_subcommand("bench-rss", "internal: peak RSS of one render");
    rss_cmd->group("");
    rss_cmd->add_option("--config", rss_config);
    rss_cmd->add_option("--width", rss_w);
    rss_cmd->add_option("--height", rss_h);
    rss_cmd->add_option("--tile", rss_tile);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        std::fprintf(stderr, "igan: error: %s\nRun with --help for more information.\n", e.what());
        return 2;
    }

    try {
        if (threads < 0) throw UsageError("--threads must be >= 0");
        igan::set_threads(threads);
        if (*init_cmd) {
            igan::check_output_path(init.out);
            igan::init_model(init);
            std::cout << init.out << "\n";
        } else if (*gen_cmd) {
            return run_generate(gen);
        } else if (*inspect_cmd) {
            return run_inspect(inspect_model, inspect_config, inspect_json);
        } else if (*fwd_cmd) {
            igan::check_output_path(fwd.out);
            const auto names = igan::run_forward(fwd);
            std::fprintf(stderr, "wrote %zu tensors to %s\n", names.size(), fwd.out.c_str());
        } else if (*bench_cmd) {
            bench.threads = threads;
            bench.measure_rss = !no_rss;
            bench.self_exe = self_exe(argv[0]);
            const auto j = igan::run_bench(bench);
            std::cout << j << "\n";
            (void)bench_json;
        } else if (*rss_cmd) {
            std::printf("%.1f\n", igan::measure_render_rss(rss_config, rss_w, rss_h, rss_tile, threads));
        }
        return 0;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "igan: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "igan: error: %s\n", e.what());
        return 1;
    }
}
