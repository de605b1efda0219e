#pragma once
// igan serve: an HTTP tile server over one or more read-only models (docs/serving.md). Every
// model is loaded once and shared by all requests; each request has its own state. Tiles are
// in an XYZ scheme: /tiles/{model}/{seed}/{z}/{x}/{y}{@2x}{.png|.webp}, where z = 0 is the
// native resolution and z < 0 are coarser levels (Leaflet's CRS.Simple): tile (z, x, y) covers
// canvas pixels [x, x + 1) * S * 2^-z by [y, y + 1) * S * 2^-z (S = tile_size) at S x S pixels
// (2S x 2S for @2x); without an extension the Accept header picks PNG or WebP. TileJSON at
// /tiles/{model}/{seed}/tilejson.json describes the same tiles as /tiles/{model}/{seed}/xyz/
// {z + 4}/{x}/{y} for clients that need zooms >= 0. No httplib or torch types cross this header.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "igan/image.h"

namespace igan {

struct ServeModel {
    std::string name;  // the URL component; the file's stem unless given
    std::string path;
};

// "name=path" or "path" (name = the file's stem); throws UsageError on an empty or unsafe name.
ServeModel parse_serve_model(const std::string& spec);


struct ServeOptions {
    std::vector<ServeModel> models;
    std::string host = "127.0.0.1";
    int port = 8080;  // 0: an ephemeral port (see TileServer::port())
    std::string device = "cpu";
    std::string precision = "fp32";  // of the renders' convolutions (Engine)
    int workers = 1;         // tiles rendered at once (each uses all intra-op threads)
    int queue = 64;          // renders allowed to wait for a worker; beyond: 503
    int http_threads = 64;   // connections served at once (keep-alive holds one)
    int64_t cache_mb = 256;  // LRU tile cache, in bytes of PNG
    int64_t tile_size = 256;
    int min_zoom = -4;               // coarsest level, in [-4, 0]
    // Zoomed-out levels. "auto": a level z < 0 renders from the texture synthesizer's partial
    // ToRGB sum at that scale where that is faithful (PSNR >= coarse_min_psnr against the
    // box-filtered native render, measured once per model at its first coarse tile), else from
    // its four finer tiles, box-filtered; a fitted coarse head or a coarse student (the model's
    // side file, igan fit-coarse) is measured the same way and wins where it does better;
    // "partial" / "head" / "student": from the partial sum / the heads / the students wherever
    // the model has one (fast, not faithful for every model); "box": always from the finer
    // tiles.
    std::string coarse = "auto";
    double coarse_min_psnr = 30;
    // A box-filtered level z < 0 that the model has a coarse student for answers a tile whose
    // finer tiles are not ready at once with the student's tile, marked as a preview
    // ("X-Igan-Preview: student", "Cache-Control: no-cache", its own ETag), and makes the exact
    // tile in the background; once that is done, the exact tile is served.
    bool coarse_preview = true;
    int preview_queue = 256;  // tiles waiting to be refined; beyond: the oldest is dropped
    int64_t rgb_cache_mb = 128;  // LRU cache of tiles' RGB, from which coarser tiles are made
    int webp_quality = 80;       // WebP tiles: 1..100 lossy, or kWebpLossless
    int64_t max_render_side = 4096;  // /render caps; beyond: 413
    int64_t max_render_pixels = int64_t{1} << 22;
    // A request's head and body must arrive within this of its first byte (else 408), and a
    // response write may wait this long for progress; shutdown takes about this long at most.
    int timeout_ms = 5000;
    int max_client_connections = 32;  // served at once per client address; beyond: 503
    std::function<void(const std::string&)> log;  // one line per event; may be empty
};
void validate_serve_options(const ServeOptions& options);  // throws UsageError

class TileServer {
public:
    // Loads every model (throws igan::Error on a bad file, UsageError on bad options).
    explicit TileServer(ServeOptions options);
    ~TileServer();
    TileServer(const TileServer&) = delete;
    TileServer& operator=(const TileServer&) = delete;

    // Binds the listening socket; returns the port (the chosen one when options.port = 0).
    // Throws Error when the address cannot be bound.
    int bind();
    // Serves until stop(); bind() first. Requests being handled finish before it returns;
    // connections waiting for or reading a request close at once (within timeout_ms in all).
    void run();
    // Thread-safe; not async-signal-safe (call it from a thread that waited for the signal).
    void stop();
    int port() const;

    std::string info_json() const;     // what /api/info answers
    std::string metrics_text() const;  // what /metrics answers (Prometheus text format)

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace igan
