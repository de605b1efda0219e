// `igan serve`: the tile server and web viewer (igan/serve.h). SIGINT/SIGTERM stop it
// gracefully: the listening socket closes, in-flight requests finish, the exit code is 0.
#include <igan/serve.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <thread>

#include "commands.h"

namespace igan::cli {
namespace {

struct ServeArgs {
    std::vector<std::string> models;
    igan::ServeOptions opt;
    bool quiet = false;
};

int g_signal_pipe[2] = {-1, -1};
volatile sig_atomic_t g_signals = 0;

void on_signal(int) {
    if (g_signals++ > 0) _exit(130);  // a second signal: stop waiting for in-flight requests
    const char byte = 's';
    const int saved = errno;
    (void)!write(g_signal_pipe[1], &byte, 1);
    errno = saved;
}

// main.cpp keeps freed memory in the heap (a 1-GB trim threshold) for the speed of one long
// render. A server's threads each grew a glibc arena and every freed byte stayed: idle RSS was
// 1.03 GB after four 2048x2048 /render requests, 250 MB of it in use (malloc_stats). So: at most
// 4 arenas, and free memory above 32 MB at the top of a heap goes back to the system (the
// server also trims after each /render). README, "Tile server", gives the resulting bound.
void serve_allocator_settings() {
    mallopt(M_ARENA_MAX, 4);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
}

int run_serve(ServeArgs& a) {
    serve_allocator_settings();
    for (const auto& spec : a.models) a.opt.models.push_back(igan::parse_serve_model(spec));
    if (!a.quiet)
        a.opt.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    igan::validate_serve_options(a.opt);
    igan::TileServer server(a.opt);
    server.bind();

    // Signals may arrive on any thread (LibTorch's included): the handler only writes to a pipe;
    // this thread reads it and stops the server.
    if (pipe(g_signal_pipe) != 0) throw igan::Error("pipe() failed");
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    std::thread watcher([&] {
        char byte = 0;
        while (read(g_signal_pipe[0], &byte, 1) < 0 && errno == EINTR) {
        }
        if (byte == 's') {
            if (!a.quiet) std::fprintf(stderr, "shutting down: finishing in-flight requests\n");
            server.stop();
        }
    });
    server.run();
    const char byte = 'q';
    (void)!write(g_signal_pipe[1], &byte, 1);  // wakes the watcher when run() ended by itself
    watcher.join();
    if (!a.quiet) std::fprintf(stderr, "stopped\n");
    return 0;
}

RegisterCommand reg(60, [](CLI::App& app, Globals&) {
    auto a = std::make_shared<ServeArgs>();
    auto& o = a->opt;
    auto* cmd = app.add_subcommand(
        "serve",
        "tile server and web viewer: /tiles/{model}/{seed}/{z}/{x}/{y}.png (or .webp, @2x), "
        "/tiles/{model}/{seed}/tilejson.json, /render, /healthz, /metrics, /api/info, / (the "
        "viewer)");
    cmd->add_option("-m,--model", a->models,
                    "model weights, PATH or NAME=PATH (NAME: the URL component; default: the "
                    "file's stem); repeat for several")
        ->required()
        ->envname("IGAN_MODEL");
    cmd->add_option("--host", o.host, "address to listen on")
        ->capture_default_str()
        ->envname("IGAN_HOST");
    cmd->add_option("--port", o.port, "port (0: any free port)")
        ->capture_default_str()
        ->envname("IGAN_PORT");
    cmd->add_option("--device", o.device, "cpu or cuda")
        ->capture_default_str()
        ->envname("IGAN_DEVICE");
    add_precision_option(cmd, &o.precision)->envname("IGAN_PRECISION");
    cmd->add_option("--workers", o.workers, "tiles rendered at once (each uses all --threads)")
        ->capture_default_str()
        ->envname("IGAN_WORKERS");
    cmd->add_option("--queue", o.queue, "renders that may wait for a worker; beyond: 503")
        ->capture_default_str()
        ->envname("IGAN_QUEUE");
    cmd->add_option("--http-threads", o.http_threads,
                    "connections served at once (a keep-alive connection holds one)")
        ->capture_default_str();
    cmd->add_option("--cache-mb", o.cache_mb, "tile cache bound in MB of PNG")
        ->capture_default_str()
        ->envname("IGAN_CACHE_MB");
    cmd->add_option("--rgb-cache-mb", o.rgb_cache_mb,
                    "cache of tiles' RGB (coarser levels are made from it), in MB")
        ->capture_default_str()
        ->envname("IGAN_RGB_CACHE_MB");
    cmd->add_option("--coarse", o.coarse,
                    "zoomed-out levels: auto (from a coarse student or a fitted coarse head, see "
                    "igan fit-coarse, or the partial ToRGB sum, where measured faithful, else "
                    "box-filtered finer tiles), student, head, partial (fast), box")
        ->capture_default_str()
        ->check(CLI::IsMember({"auto", "student", "head", "partial", "box"}));
    cmd->add_option("--coarse-min-psnr", o.coarse_min_psnr,
                    "--coarse auto: PSNR (dB) against the box filter a direct level needs")
        ->capture_default_str();
    cmd->add_option("--coarse-preview", o.coarse_preview,
                    "box-filtered levels with a coarse student: answer a cold tile with the "
                    "student's (X-Igan-Preview), make the exact one in the background")
        ->capture_default_str();
    cmd->add_option("--preview-queue", o.preview_queue,
                    "previewed tiles waiting to be refined; beyond: the oldest is dropped")
        ->capture_default_str();
    add_webp_quality_option(
        cmd, &o.webp_quality,
        "WebP tiles: lossy quality 1..100, or lossless (a request's ?quality= overrides)");
    cmd->add_option("--tile-size", o.tile_size, "tile side in pixels")->capture_default_str();
    cmd->add_option("--min-zoom", o.min_zoom, "coarsest zoom level served, in [-4, 0]")
        ->capture_default_str();
    cmd->add_option("--max-render-side", o.max_render_side, "/render: largest side (else 413)")
        ->capture_default_str();
    cmd->add_option("--max-render-pixels", o.max_render_pixels, "/render: most pixels (else 413)")
        ->capture_default_str();
    cmd->add_option("--timeout-ms", o.timeout_ms,
                    "a request must arrive within this (else 408) and a response write may "
                    "stall this long; also bounds shutdown")
        ->capture_default_str();
    cmd->add_option("--max-client-connections", o.max_client_connections,
                    "connections served at once per client address (beyond: 503)")
        ->capture_default_str()
        ->envname("IGAN_MAX_CLIENT_CONNECTIONS");
    cmd->add_flag("-q,--quiet", a->quiet, "no log lines on stderr");
    return std::make_pair(cmd, Runner([a] { return run_serve(*a); }));
});

}  // namespace
}  // namespace igan::cli
