// `igan bench`: speed against an in-run convolution peak, and memory: the peak RSS of a small and
// a wide render, each measured in a child process (`igan bench-rss`) since peak RSS only grows.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"

extern char** environ;

namespace igan::cli {
namespace {

void print_table(const nlohmann::json& j) {
    for (auto it = j.begin(); it != j.end(); ++it)
        std::printf("%-28s %s\n", it.key().c_str(), it.value().dump().c_str());
}

// Runs `args` (args[0]: the program's path) without a shell and returns what it printed on
// stdout as a number, or -1 when it cannot start, fails or prints no number.
double run_for_number(const std::vector<std::string>& args) {
    int out[2];
    if (::pipe(out) != 0) return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addclose(&actions, out[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    std::string text;
    if (err == 0) {
        char buf[256];
        ssize_t n = 0;
        while ((n = ::read(out[0], buf, sizeof buf)) != 0) {
            if (n > 0) text.append(buf, size_t(n));
            else if (errno != EINTR) break;
        }
    }
    ::close(out[0]);
    if (err != 0) return -1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    return end != text.c_str() ? v : -1;
}

struct RssOptions {
    // The small canvas and the wide one (height 0: one strip of tiles, so that the paper config
    // finishes in minutes; the 1024x1024 -> 65536x512 comparison is these options set
    // explicitly, see bench/README.md).
    int64_t small_width = 1024, small_height = 0;
    int64_t large_width = 8192, large_height = 0;
};

// Adds rss_small, rss_large and their peak RSS in MB to the bench's JSON, rendered as it was
// timed (config, tile, threads, workers).
void add_rss(nlohmann::json& j, const RssOptions& o, const std::string& self_exe) {
    const int64_t tile = j.at("tile"), strip = tile;
    const std::string config = j.at("config"), threads = std::to_string(int(j.at("threads"))),
                      workers = std::to_string(int64_t(j.at("workers")));
    auto measure = [&](const char* name, int64_t w, int64_t h) {
        h = h > 0 ? h : strip;
        j[std::string("rss_") + name] = std::to_string(w) + "x" + std::to_string(h);
        j[std::string("rss_mb_") + name] =
            run_for_number({self_exe, "bench-rss", "--config", config, "--width", std::to_string(w),
                            "--height", std::to_string(h), "--tile", std::to_string(tile),
                            "--threads", threads, "--workers", workers});
    };
    measure("small", o.small_width, o.small_height);
    measure("large", o.large_width, o.large_height);
}

RegisterCommand bench_reg(90, [](CLI::App& app, Globals& g) {
    auto r = std::make_shared<BenchRequest>();
    auto rss = std::make_shared<RssOptions>();
    auto json = std::make_shared<bool>(false);
    auto no_rss = std::make_shared<bool>(false);
    auto* cmd = app.add_subcommand("bench", "measure generation speed and memory");
    cmd->add_option("--config", r->config, "paper, tiny or a JSON file")->capture_default_str();
    cmd->add_option("--device", r->device, "cpu or cuda (on cuda: no --scaling, no RSS)")
        ->capture_default_str();
    add_precision_option(cmd, &r->precision);
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
    cmd->add_option("--rss-small-width", rss->small_width, "small RSS canvas width")
        ->capture_default_str();
    cmd->add_option("--rss-small-height", rss->small_height,
                    "small RSS canvas height (0 = one strip of tiles)")
        ->capture_default_str();
    cmd->add_option("--rss-large-width", rss->large_width, "wide RSS strip width")
        ->capture_default_str();
    cmd->add_option("--rss-large-height", rss->large_height,
                    "wide RSS canvas height (0 = one strip of tiles)")
        ->capture_default_str();
    return std::make_pair(cmd, Runner([r, rss, json, no_rss, &g] {
        r->threads = g.threads;
        auto out = nlohmann::json::parse(run_bench(*r));
        if (!*no_rss && !g.self_exe.empty() && out.at("device") == "cpu")
            add_rss(out, *rss, g.self_exe);
        if (*json) {
            std::cout << out.dump() << "\n";
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
