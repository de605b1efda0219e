// igan serve: XYZ tiles (PNG or WebP, @2x), TileJSON, /render, /healthz, /metrics, /api/info and
// the embedded viewer over cpp-httplib. Models are loaded once and shared read-only; each request
// renders with its own state (Engine::render_rgb is const). Tiles render on a pool of worker
// threads with a bounded queue (503 beyond it). A tile's RGB goes through a byte-bounded LRU
// cache of its own, from which coarser tiles are box-filtered (no PNG is ever decoded), and each
// encoding through another; both produce single-flight. Zoomed-out levels render directly from
// the texture synthesizer's partial ToRGB sum, a fitted coarse head or a coarse student where that
// was measured faithful (docs/serving.md).
#include <httplib.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "igan/igan.h"
#include "igan/image.h"
#include "igan/serve.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/routes.h"
#include "serve/tile_cache.h"
#include "serve/tile_images.h"
#include "serve/web_assets.h"

namespace igan {

namespace {

constexpr size_t kMaxBodyBytes = 64 * 1024;  // nothing here takes a body
constexpr size_t kMaxRequestsPerConnection = 1000;

struct Busy : std::runtime_error {
    Busy() : std::runtime_error("server busy: render queue full") {}
};

using Clock = std::chrono::steady_clock;
thread_local Clock::time_point t_request_start;
thread_local bool t_refining = false;  // this thread refines previewed tiles in the background

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string route_of(const std::string& path) {
    if (path.rfind("/tiles/", 0) == 0) return "tiles";
    if (path == "/render") return "render";
    if (path == "/healthz") return "healthz";
    if (path == "/metrics") return "metrics";
    if (path == "/api/info") return "info";
    if (web::find_asset(path)) return "static";
    return "other";
}

// Tiles and renders are immutable for a model, seed and rectangle: tag them and answer 304 when
// the client already holds this version.
bool not_modified(const httplib::Request& req, httplib::Response& res, const std::string& tag) {
    res.set_header("ETag", tag);
    res.set_header("Cache-Control", "public, max-age=31536000, immutable");
    if (req.get_header_value("If-None-Match") != tag) return false;
    res.status = 304;
    return true;
}

void send_error(httplib::Response& res, int status, const std::string& message) {
    res.status = status;
    // A failure after not_modified() must not be cached, nor carry the tile's tag.
    res.headers.erase("ETag");
    res.headers.erase("Cache-Control");
    res.set_header("Cache-Control", "no-store");
    res.set_content(nlohmann::json{{"error", message}, {"status", status}}.dump() + "\n",
                    "application/json");
}

const char* reason(int status) {
    switch (status) {
        case 400:
            return "bad request";
        case 404:
            return "not found";
        case 405:
            return "method not allowed";
        case 413:
            return "payload too large";
        case 414:
            return "URI too long";
        case 431:
            return "request header fields too large";
        case 503:
            return "service unavailable";
        default:
            return status < 500 ? "client error" : "server error";
    }
}

std::string file_stem(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    const size_t dot = base.find_last_of('.');
    if (dot != std::string::npos && dot > 0) base = base.substr(0, dot);
    return base;
}

int64_t floor_mod(int64_t a, int64_t b) {
    const int64_t r = a % b;
    return r < 0 ? r + b : r;
}

// Everything a tile's pixels depend on besides its address, from the query string.
struct TileQuery {
    Fusion fusion;
    int64_t cyclic = 0;  // canvas period in pixels (0: none)
    std::string key;     // canonical, for cache keys, ETags and TileJSON templates
};

constexpr uint64_t kCalibrationSeed = 0;
constexpr int64_t kCalibrationSide = 256;  // native pixels of the faithfulness measurement

// How a level z < 0 is rendered directly.
enum class CoarseSource { kPartial, kHead, kStudent };

const char* coarse_source_name(CoarseSource s) {
    return s == CoarseSource::kHead ? "head" : s == CoarseSource::kStudent ? "student" : "partial";
}

const char* coarse_source_words(CoarseSource s) {
    return s == CoarseSource::kHead      ? "fitted coarse head"
           : s == CoarseSource::kStudent ? "coarse student"
                                         : "partial ToRGB sum";
}

}  // namespace

ServeModel parse_serve_model(const std::string& spec) {
    ServeModel m;
    const size_t eq = spec.find('=');
    if (eq != std::string::npos && valid_model_name(spec.substr(0, eq))) {
        m.name = spec.substr(0, eq);
        m.path = spec.substr(eq + 1);
    } else {
        m.path = spec;
        m.name = file_stem(spec);
        for (char& c : m.name)
            if (!valid_model_name(std::string(1, c)) && c != '.') c = '_';
        if (!m.name.empty() && m.name[0] == '.') m.name[0] = '_';
    }
    if (m.path.empty()) throw UsageError("--model '" + spec + "': empty path");
    if (!valid_model_name(m.name))
        throw UsageError("--model '" + spec + "': the name must be 1-64 of [A-Za-z0-9._-]; " +
                         "give one as NAME=PATH");
    return m;
}

void validate_serve_options(const ServeOptions& o) {
    std::vector<std::string> problems;
    if (o.models.empty()) problems.push_back("at least one --model is needed");
    for (size_t i = 0; i < o.models.size(); ++i) {
        if (!valid_model_name(o.models[i].name))
            problems.push_back("bad model name '" + o.models[i].name + "'");
        for (size_t j = 0; j < i; ++j)
            if (o.models[i].name == o.models[j].name)
                problems.push_back("two models are named '" + o.models[i].name +
                                   "'; use --model NAME=PATH");
    }
    if (o.port < 0 || o.port > 65535) problems.push_back("--port must be in [0, 65535]");
    if (o.workers < 1 || o.workers > 64) problems.push_back("--workers must be in [1, 64]");
    if (o.queue < 0 || o.queue > 100000) problems.push_back("--queue must be in [0, 100000]");
    if (o.http_threads < 1 || o.http_threads > 1024)
        problems.push_back("--http-threads must be in [1, 1024]");
    if (o.cache_mb < 0 || o.cache_mb > (int64_t{1} << 20))
        problems.push_back("--cache-mb must be in [0, 1048576]");
    if (o.tile_size < 16 || o.tile_size > 1024 || o.tile_size % 2)
        problems.push_back("--tile-size must be even and in [16, 1024]");
    if (o.min_zoom < kMinZoomLimit || o.min_zoom > 0)
        problems.push_back("--min-zoom must be in [" + std::to_string(kMinZoomLimit) + ", 0]");
    if (o.max_render_side < 1 || o.max_render_side > kMaxSideWithoutForce)
        problems.push_back("--max-render-side must be in [1, 65536]");
    if (o.max_render_pixels < 1 || o.max_render_pixels > (int64_t{1} << 28))
        problems.push_back("--max-render-pixels must be in [1, 2^28]");
    if (o.coarse != "auto" && o.coarse != "partial" && o.coarse != "head" &&
        o.coarse != "student" && o.coarse != "box")
        problems.push_back("--coarse must be auto, partial, head, student or box");
    if (o.preview_queue < 1) problems.push_back("--preview-queue must be >= 1");
    if (!(o.coarse_min_psnr >= 0 && o.coarse_min_psnr <= 99))
        problems.push_back("--coarse-min-psnr must be in [0, 99] dB");
    if (o.rgb_cache_mb < 0 || o.rgb_cache_mb > (int64_t{1} << 20))
        problems.push_back("--rgb-cache-mb must be in [0, 1048576]");
    if (o.webp_quality != kWebpLossless && (o.webp_quality < 1 || o.webp_quality > 100))
        problems.push_back("--webp-quality must be lossless or in [1, 100]");
    if (o.timeout_ms < 10 || o.timeout_ms > 600000)
        problems.push_back("--timeout-ms must be in [10, 600000]");
    if (o.max_client_connections < 1 || o.max_client_connections > 1024)
        problems.push_back("--max-client-connections must be in [1, 1024]");
    if (!problems.empty()) {
        std::string all;
        for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
        throw UsageError(all);
    }
}

struct TileServer::Impl {
    struct Model {
        ServeModel spec;
        std::unique_ptr<Engine> engine;
        // Levels z < 0 rendered directly, from a partial ToRGB sum, a fitted coarse head or a
        // coarse student, decided on first use (a measurement at a fixed seed and place, so
        // every tile stays a function of its address alone).
        std::mutex levels_mutex;
        bool levels_decided = false;
        std::map<int, CoarseSource> direct;
        struct Measured {
            int level;
            CoarseSource source;
            double psnr_db;
        };
        std::vector<Measured> measured;  // in --coarse auto
    };

    explicit Impl(ServeOptions o)
        : opt(std::move(o)),
          store(opt.cache_mb * (int64_t{1} << 20)),
          rgb_store(opt.rgb_cache_mb * (int64_t{1} << 20)),
          pool(opt.workers, opt.queue),
          http(limits(opt)),
          refiner(opt.preview_queue) {}

    static ConnectionLimits limits(const ServeOptions& o) {
        ConnectionLimits l;
        l.request_timeout = l.write_timeout = std::chrono::milliseconds(o.timeout_ms);
        l.idle_timeout = std::chrono::milliseconds(std::clamp(o.timeout_ms, 1000, 2000));
        l.max_body_bytes = kMaxBodyBytes;
        l.max_requests = kMaxRequestsPerConnection;
        l.max_per_client = o.max_client_connections;
        return l;
    }

    ServeOptions opt;
    std::vector<std::unique_ptr<Model>> models;
    TileStore store;      // encoded tiles
    TileStore rgb_store;  // raw RGB of 1x tiles, the material of coarser ones
    RenderPool pool;
    Metrics metrics;
    HttpServer http;
    int port = -1;
    std::mutex run_mutex;
    bool stop_requested = false;
    std::atomic<bool> in_run{false};
    // Last member: destroyed first, so no refinement outlives the stores and pool it uses.
    BackgroundQueue refiner;

    void log(const std::string& line) const {
        if (opt.log) opt.log(line);
    }

    Model* find(const std::string& name) const {
        for (const auto& m : models)
            if (m->spec.name == name) return m.get();
        return nullptr;
    }

    // 8-bit RGB of a rectangle of level z (0 or a partial level), in that level's pixels.
    std::vector<uint8_t> render(const Model& m, uint64_t seed, int64_t x, int64_t y, int64_t w,
                                int64_t h, const TileQuery& q, int level = 0,
                                CoarseSource source = CoarseSource::kPartial) {
        GenerateRequest r;
        r.styles = q.fusion.styles;
        r.style_band = q.fusion.band;
        r.cyclic_width = q.cyclic;
        r.seed = seed;
        r.level = level;
        r.coarse_head = source == CoarseSource::kHead;
        r.coarse_student = source == CoarseSource::kStudent;
        r.x = x;
        r.y = y;
        r.width = w;
        r.height = h;
        r.tile = opt.tile_size;  // /render computes the very windows of the tiles it covers
        if (t_refining && refiner.stopping()) throw Busy();  // shutting down: stop refining
        std::vector<uint8_t> rgb;
        const bool ran = pool.run([&] {
            const auto t0 = Clock::now();
            rgb = m.engine->render_rgb(r);
            metrics.rendered(seconds_since(t0), level, w * h);
        });
        if (!ran) {
            metrics.rejected();
            throw Busy();
        }
        return rgb;
    }

    // The levels this model renders directly (besides 0) and from what, deciding them on the
    // first call for a level z < 0. A calibration that a full queue interrupts (Busy) leaves
    // nothing behind: the next call measures again.
    const std::map<int, CoarseSource>& direct_levels(Model& m) {
        std::lock_guard<std::mutex> lock(m.levels_mutex);
        if (m.levels_decided) return m.direct;
        m.direct.clear();
        m.measured.clear();
        const auto& s = m.engine->summary();
        std::vector<std::pair<int, CoarseSource>> candidates;
        const bool any = opt.coarse == "auto";
        for (const auto& h : s.coarse_students)
            if (h.level >= opt.min_zoom && (any || opt.coarse == "student"))
                candidates.emplace_back(h.level, CoarseSource::kStudent);
        for (const auto& h : s.coarse_heads)
            if (h.level >= opt.min_zoom && (any || opt.coarse == "head"))
                candidates.emplace_back(h.level, CoarseSource::kHead);
        for (int p : s.partial_levels)
            if (p >= opt.min_zoom && (any || opt.coarse == "partial"))
                candidates.emplace_back(p, CoarseSource::kPartial);
        if (!any) {
            for (const auto& [p, source] : candidates) m.direct.emplace(p, source);
        } else if (!candidates.empty()) {
            // Each way against what the box filter would serve, over one region; per level the
            // better way that reaches the threshold.
            const int64_t side = kCalibrationSide, x0 = -side / 2;
            const auto native = render(m, kCalibrationSeed, x0, x0, side, side, {});
            std::map<int, double> best;
            for (const auto& [p, source] : candidates) {
                const int64_t f = int64_t{1} << -p;
                const auto ref = box_filter(native.data(), side, f);
                const auto got =
                    render(m, kCalibrationSeed, x0 / f, x0 / f, side / f, side / f, {}, p, source);
                const double db = psnr(got.data(), reinterpret_cast<const uint8_t*>(ref.data()),
                                       int64_t(got.size()));
                m.measured.push_back({p, source, db});
                const bool ok = db >= opt.coarse_min_psnr && (!best.count(p) || db > best[p]);
                if (ok) best[p] = db, m.direct[p] = source;
                char line[200];
                std::snprintf(line, sizeof line,
                              "model %s: level %d from the %s: %.1f dB against the box filter "
                              "(needs %.1f)",
                              m.spec.name.c_str(), p, coarse_source_words(source), db,
                              opt.coarse_min_psnr);
                log(line);
            }
        }
        if (!s.coarse_heads_note.empty()) log("model " + m.spec.name + ": " + s.coarse_heads_note);
        m.levels_decided = true;
        return m.direct;
    }

    // z = 0 never calibrates: a native tile or /render costs one render, not the coarse levels'
    // measurements first (several renders competing for the queue).
    bool is_direct(Model& m, int z) { return z == 0 || direct_levels(m).count(z) > 0; }
    CoarseSource source_of(Model& m, int z) {
        if (z == 0) return CoarseSource::kPartial;
        const auto& d = direct_levels(m);
        const auto it = d.find(z);
        return it == d.end() ? CoarseSource::kPartial : it->second;
    }

    // On a cyclic canvas whose period is a whole number of this level's tiles, the one copy of
    // a tile that the cache holds.
    TileAddress canonical(TileAddress t, const TileQuery& q) const {
        const int64_t side = opt.tile_size << -t.z;
        if (q.cyclic > 0 && q.cyclic % side == 0) t.x = floor_mod(t.x, q.cyclic / side);
        return t;
    }

    static std::string key_of(const TileAddress& t, const TileQuery& q) {
        return t.model + "/" + std::to_string(t.seed) + "/" + std::to_string(t.z) + "/" +
               std::to_string(t.x) + "/" + std::to_string(t.y) +
               (q.key.empty() ? "" : "?" + q.key);
    }

    // The query of a tile, TileJSON or /render request (400 on a malformed one).
    static ParseStatus query_of(const httplib::Request& req, TileQuery* out) {
        auto param = [&](const char* name) {
            return req.has_param(name) ? req.get_param_value(name) : std::string();
        };
        if (req.has_param("fuse") && param("fuse").empty()) return {400, "fuse is empty"};
        if (req.has_param("band") && param("band").empty()) return {400, "band is empty"};
        TileQuery q;
        const auto fs = parse_fusion(param("fuse"), param("band"), &q.fusion);
        if (!fs.ok()) return fs;
        if (req.has_param("cyclic")) {
            if (!parse_int64(param("cyclic"), &q.cyclic) || q.cyclic < 1 ||
                q.cyclic > kCanvasLimit)
                return {400, "cyclic must be a positive integer width in pixels"};
            if (!q.fusion.styles.empty())
                return {400, "style fusion and a cyclic canvas cannot be combined"};
        }
        q.key = q.fusion.key;
        if (q.cyclic > 0)
            q.key += std::string(q.key.empty() ? "" : "&") + "cyclic=" + std::to_string(q.cyclic);
        *out = std::move(q);
        return {};
    }

    std::string etag(const Model& m, const std::string& what) const {
        return "\"" + m.engine->summary().sha256.substr(0, 16) + "-" + what + "\"";
    }

    // A 1x tile's RGB: rendered at level 0 or a direct level, else box-filtered from its four
    // children (recursively, through this cache).
    Blob tile_rgb(Model& m, TileAddress t, const TileQuery& q) {
        t = canonical(t, q);
        return rgb_store.get("rgb:" + key_of(t, q), [&]() -> std::string {
            const int64_t s = opt.tile_size;
            if (is_direct(m, t.z)) {
                const auto rgb =
                    render(m, t.seed, t.x * s, t.y * s, s, s, q, t.z, source_of(m, t.z));
                return std::string(rgb.begin(), rgb.end());
            }
            std::string out(size_t(s * s * 3), '\0');
            for (int c = 0; c < 4; ++c) {
                const auto child = tile_rgb(m, child_of(t, c), q);
                box_into_quadrant(reinterpret_cast<const uint8_t*>(child->data()), s, c & 1,
                                  c >> 1, reinterpret_cast<uint8_t*>(out.data()));
            }
            metrics.composed();
            return out;
        });
    }

    static TileAddress child_of(const TileAddress& t, int c) {
        TileAddress k = t;
        k.z = t.z + 1;
        k.x = 2 * t.x + (c & 1);
        k.y = 2 * t.y + (c >> 1);
        return k;
    }

    // The encoded tile (format already negotiated) through the cache of encodings.
    Blob tile_bytes(Model& m, TileAddress t, const TileQuery& q, TileFormat format, int quality,
                    bool* cache_hit) {
        t = canonical(t, q);
        const std::string key = key_of(t, q) + (t.scale == 2 ? "@2x" : "") +
                                (format == TileFormat::kWebp ? ".webp" + quality_text(quality)
                                                             : ".png");
        TileStore::Source source = TileStore::Source::kProduced;
        auto blob = store.get(
            key,
            [&]() -> std::string {
                const int64_t s = opt.tile_size;
                Blob one;
                std::string two;
                if (t.scale == 1) {
                    one = tile_rgb(m, t, q);
                } else if (t.z == 0) {  // nothing finer than native: each pixel doubled
                    two = pixel_double(
                        reinterpret_cast<const uint8_t*>(tile_rgb(m, t, q)->data()), s);
                } else {  // the four tiles of the next finer level, as they are
                    two.assign(size_t(12 * s * s), '\0');
                    for (int c = 0; c < 4; ++c) {
                        TileAddress k = child_of(t, c);
                        k.scale = 1;
                        const auto child = tile_rgb(m, k, q);
                        copy_into_quadrant(reinterpret_cast<const uint8_t*>(child->data()), s,
                                           c & 1, c >> 1, reinterpret_cast<uint8_t*>(two.data()));
                    }
                }
                const auto* px = reinterpret_cast<const uint8_t*>(one ? one->data() : two.data());
                const int64_t side = s * t.scale;
                return format == TileFormat::kWebp ? encode_webp(px, side, side, quality)
                                                   : encode_png(px, side, side);
            },
            &source);
        if (cache_hit) *cache_hit = source == TileStore::Source::kCache;
        return blob;
    }

    static std::string quality_text(int quality) {
        return quality == kWebpLossless ? "lossless" : std::to_string(quality);
    }

    // The format of a tile request: its extension, or its Accept header; WebP falls back to PNG
    // where this igan has no libwebp. The quality comes from ?quality= or --webp-quality.
    ParseStatus format_of(const httplib::Request& req, const TileAddress& t, TileFormat* format,
                          int* quality) const {
        *format = t.format == TileFormat::kNegotiated
                      ? negotiate_format(req.get_header_value("Accept"))
                      : t.format;
        if (*format == TileFormat::kWebp && !webp_available()) {
            if (t.format == TileFormat::kWebp)
                return {404, "this igan was built without libwebp: no .webp tiles"};
            *format = TileFormat::kPng;
        }
        *quality = opt.webp_quality;
        if (req.has_param("quality"))
            return parse_webp_quality(req.get_param_value("quality"), quality);
        return {};
    }

    // Whether a tile is answered by a preview: its level is box-filtered, the model has a
    // student for it, and neither the tile nor the finer tiles it is made of are cached.
    bool wants_preview(Model& m, const TileAddress& t, const std::string& variant) {
        if (!opt.coarse_preview || t.z >= 0 || is_direct(m, t.z)) return false;
        const auto& students = m.engine->summary().coarse_students;
        if (std::none_of(students.begin(), students.end(),
                         [&](const auto& s) { return s.level == t.z; }))
            return false;
        return !store.cache().get(variant);
    }

    // The tile's RGB, or (as a @2x tile always needs) its four children's, is cached: the
    // exact tile costs no render.
    bool rgb_ready(const TileAddress& t, const TileQuery& q) {
        if (t.scale == 1 && rgb_store.cache().get("rgb:" + key_of(t, q))) return true;
        for (int c = 0; c < 4; ++c)
            if (!rgb_store.cache().get("rgb:" + key_of(canonical(child_of(t, c), q), q)))
                return false;
        return true;
    }

    // The student's tile for a box-filtered level, tagged as a preview, and the exact tile
    // queued for the background. False (nothing sent) where the student cannot render it.
    bool send_preview(const httplib::Request& req, httplib::Response& res, Model& m,
                      TileAddress t, const TileQuery& q, TileFormat format, int quality,
                      const std::string& variant) {
        t = canonical(t, q);
        const int64_t s = opt.tile_size;
        const std::string key = variant + "~preview";
        Blob bytes;
        try {
            bytes = store.get(key, [&]() -> std::string {
                const auto rgb = render(m, t.seed, t.x * s, t.y * s, s, s, q, t.z,
                                        CoarseSource::kStudent);
                const std::string two = t.scale == 2 ? pixel_double(rgb.data(), s) : "";
                const auto* px = t.scale == 2 ? reinterpret_cast<const uint8_t*>(two.data())
                                              : rgb.data();
                return format == TileFormat::kWebp ? encode_webp(px, s * t.scale, s * t.scale,
                                                                 quality)
                                                   : encode_png(px, s * t.scale, s * t.scale);
            });
        } catch (const UsageError&) {  // e.g. a cyclic period the student cannot follow
            return false;
        }
        refiner.add(variant, [this, &m, t, q, format, quality] {
            t_refining = true;
            tile_bytes(m, t, q, format, quality, nullptr);
        });
        metrics.preview();
        const std::string tag = etag(m, key);
        res.set_header("ETag", tag);
        res.set_header("Cache-Control", "no-cache");  // revalidate: the exact tile will follow
        res.set_header("X-Igan-Preview", "student");
        res.set_header("Access-Control-Expose-Headers", "X-Igan-Preview");
        if (req.get_header_value("If-None-Match") == tag) {
            res.status = 304;
            return true;
        }
        res.set_content(bytes->data(), bytes->size(),
                        format == TileFormat::kWebp ? "image/webp" : "image/png");
        return true;
    }

    void handle_tile(const httplib::Request& req, httplib::Response& res) {
        TileAddress t;
        const auto st = parse_tile_path(req.matches[1], opt.min_zoom, opt.tile_size, &t);
        if (!st.ok()) return send_error(res, st.status, st.error);
        Model* m = find(t.model);
        if (!m) return send_error(res, 404, "no such model: " + t.model);
        TileQuery q;
        const auto qs = query_of(req, &q);
        if (!qs.ok()) return send_error(res, qs.status, qs.error);
        TileFormat format = TileFormat::kPng;
        int quality = 0;
        const auto fs = format_of(req, t, &format, &quality);
        if (!fs.ok()) return send_error(res, fs.status, fs.error);
        if (t.format == TileFormat::kNegotiated) res.set_header("Vary", "Accept");
        const std::string variant = key_of(canonical(t, q), q) + (t.scale == 2 ? "@2x" : "") +
                                    (format == TileFormat::kWebp ? ".webp" + quality_text(quality)
                                                                 : ".png");
        const std::string tag = etag(*m, variant);
        try {
            if (req.get_header_value("If-None-Match") != tag &&
                wants_preview(*m, canonical(t, q), variant) && !rgb_ready(canonical(t, q), q) &&
                send_preview(req, res, *m, t, q, format, quality, variant))
                return;
            if (not_modified(req, res, tag)) return;
            bool hit = false;
            const auto bytes = tile_bytes(*m, t, q, format, quality, &hit);
            metrics.tile(hit);
            res.set_header("X-Cache", hit ? "hit" : "miss");
            res.set_content(bytes->data(), bytes->size(),
                            format == TileFormat::kWebp ? "image/webp" : "image/png");
        } catch (const Busy& e) {
            res.set_header("Retry-After", "1");
            send_error(res, 503, e.what());
        } catch (const UsageError& e) {  // what the engine refuses to render
            send_error(res, 400, e.what());
        }
    }

    // TileJSON 3.0.0 (github.com/mapbox/tilejson-spec) of one model and seed. Web map clients
    // need zooms >= 0, so its template is the /xyz/ scheme; the canvas is pixels, not the
    // globe, so bounds are omitted (unbounded) and the centre is the origin at native zoom.
    void handle_tilejson(const httplib::Request& req, httplib::Response& res) {
        const std::string name = req.matches[1];
        uint64_t seed = 0;
        if (!valid_model_name(name)) return send_error(res, 404, "no such model");
        if (!parse_uint64(req.matches[2], &seed))
            return send_error(res, 400, "seed must be an unsigned 64-bit integer");
        Model* m = find(name);
        if (!m) return send_error(res, 404, "no such model: " + name);
        TileQuery q;
        const auto qs = query_of(req, &q);
        if (!qs.ok()) return send_error(res, qs.status, qs.error);
        std::string query = q.key;
        if (req.has_param("quality")) {
            int quality = 0;
            const auto ps = parse_webp_quality(req.get_param_value("quality"), &quality);
            if (!ps.ok()) return send_error(res, ps.status, ps.error);
            query += (query.empty() ? "" : "&") + ("quality=" + quality_text(quality));
        }
        // The Host header names this server as the client reached it; anything odd in it is
        // replaced by the bound address.
        std::string host = req.get_header_value("Host");
        const bool plain = !host.empty() && host.size() <= 255 &&
                           host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
                                                  "UVWXYZ0123456789.-:[]") == std::string::npos;
        if (!plain) host = opt.host + ":" + std::to_string(port);
        const std::string base = "http://" + host + "/tiles/" + name + "/" + std::to_string(seed) +
                                 "/xyz/{z}/{x}/{y}";
        const std::string suffix = query.empty() ? "" : "?" + query;
        const auto& s = m->engine->summary();
        nlohmann::json j = {
            {"tilejson", "3.0.0"},
            {"name", "igan " + name + " seed " + std::to_string(seed)},
            {"description", "An endless canvas generated by igan (InfinityGAN) from model " +
                                name + " (" + s.config_name + ", sha256 " +
                                s.sha256.substr(0, 16) + "); pixel coordinates, not the globe."},
            {"version", "1.0.0"},
            {"attribution", "generated by igan, model " + name},
            {"scheme", "xyz"},
            {"tiles", {base + suffix}},
            {"minzoom", opt.min_zoom + kXyzNativeZoom},
            {"maxzoom", kXyzNativeZoom},
            {"center", {0, 0, kXyzNativeZoom}},
            {"igan",
             {{"tile_size", opt.tile_size},
              {"native_zoom", kXyzNativeZoom},
              {"tiles_2x", {base + "@2x" + suffix}},
              {"cyclic_width", q.cyclic},
              {"formats", webp_available() ? nlohmann::json{"png", "webp"}
                                           : nlohmann::json{"png"}}}}};
        res.set_header("Cache-Control", "no-cache");
        res.set_content(j.dump(), "application/json");
    }

    void handle_render(const httplib::Request& req, httplib::Response& res) {
        auto param = [&](const char* name) -> std::string {
            return req.has_param(name) ? req.get_param_value(name) : std::string();
        };
        int64_t x = 0, y = 0, w = 0, h = 0, z = 0;
        for (auto [name, v] : {std::pair{"x", &x}, {"y", &y}, {"w", &w}, {"h", &h}})
            if (!parse_int64(param(name), v))
                return send_error(res, 400, std::string(name) + " must be a 64-bit integer");
        if (req.has_param("z") && !parse_int64(param("z"), &z))
            return send_error(res, 400, "z must be an integer");
        uint64_t seed = 0;
        if (req.has_param("seed") && !parse_uint64(param("seed"), &seed))
            return send_error(res, 400, "seed must be an unsigned 64-bit integer");
        Model* m = req.has_param("model") ? find(param("model")) : models.front().get();
        if (!m) return send_error(res, 404, "no such model");
        if (w <= 0 || h <= 0) return send_error(res, 400, "w and h must be positive");
        if (w > opt.max_render_side || h > opt.max_render_side ||
            double(w) * double(h) > double(opt.max_render_pixels))
            return send_error(res, 413,
                              "region too large: at most " + std::to_string(opt.max_render_side) +
                                  " per side and " + std::to_string(opt.max_render_pixels) +
                                  " pixels");
        if (x < -kCanvasLimit || x > kCanvasLimit - w || y < -kCanvasLimit || y > kCanvasLimit - h)
            return send_error(res, 400, "region outside the canvas (+-2^60 pixels)");
        TileQuery q;
        const auto qs = query_of(req, &q);
        if (!qs.ok()) return send_error(res, qs.status, qs.error);
        try {
            // z < 0: only a level the tiles render directly, so the two agree.
            if (z != 0 && (z < opt.min_zoom || z > 0 || !is_direct(*m, int(z))))
                return send_error(res, 400,
                                  "z must be 0 or a level the tiles render directly (see "
                                  "/api/info)");
            const std::string what =
                "r" + std::to_string(seed) + "_" + std::to_string(x) + "_" + std::to_string(y) +
                "_" + std::to_string(w) + "x" + std::to_string(h) +
                (z ? "_z" + std::to_string(z) : "") + (q.key.empty() ? "" : "_q");
            const std::string tag = etag(*m, what + (q.key.empty() ? "" : "?" + q.key));
            if (not_modified(req, res, tag)) return;
            const auto rgb = render(*m, seed, x, y, w, h, q, int(z), source_of(*m, int(z)));
            res.set_header("Content-Disposition",
                           "attachment; filename=\"igan-" + m->spec.name + "-" + what + ".png\"");
            res.body = encode_png(rgb.data(), w, h, png_threads());  // moved, not copied
            res.set_header("Content-Type", "image/png");
#ifdef __GLIBC__
            // A /render frees tens of MB at once, much of it in the middle of the heap where
            // the trim threshold does not reach: hand it back to the system now.
            malloc_trim(0);
#endif
        } catch (const Busy& e) {
            res.set_header("Retry-After", "1");
            send_error(res, 503, e.what());
        } catch (const UsageError& e) {  // what the engine refuses to render
            send_error(res, 400, e.what());
        }
    }

    void setup() {
        http.new_task_queue = [n = opt.http_threads] { return new httplib::ThreadPool(n); };
        // Only for the Keep-Alive header httplib writes; HttpServer enforces the limits.
        http.set_keep_alive_timeout(std::max(1, std::min(opt.timeout_ms, 2000) / 1000));
        http.set_keep_alive_max_count(kMaxRequestsPerConnection);
        http.set_payload_max_length(kMaxBodyBytes);
        http.on_early_answer = [this](int status, double seconds) {
            metrics.request("other", status, seconds);
        };
        http.set_pre_routing_handler([](const httplib::Request&, httplib::Response& res) {
            t_request_start = Clock::now();
            res.set_header("Access-Control-Allow-Origin", "*");
            return httplib::Server::HandlerResponse::Unhandled;
        });
        http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
            metrics.request(route_of(req.path), res.status, seconds_since(t_request_start));
        });
        http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
            if (res.body.empty()) send_error(res, res.status, reason(res.status));
        });
        http.set_exception_handler(
            [this](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
                std::string what = "unknown error";
                try {
                    std::rethrow_exception(ep);
                } catch (const std::exception& e) {
                    what = e.what();
                } catch (...) {
                }
                log("error: " + req.path + ": " + what);
                send_error(res, 500, what);
            });

        http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
            res.set_header("Cache-Control", "no-store");
            res.set_content("ok\n", "text/plain");
        });
        http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
            res.set_header("Cache-Control", "no-store");
            res.set_content(metrics_text(), "text/plain; version=0.0.4");
        });
        http.Get("/api/info", [this](const httplib::Request&, httplib::Response& res) {
            res.set_header("Cache-Control", "no-store");
            res.set_content(info_json(), "application/json");
        });
        http.Get(R"(/tiles/([^/]+)/([^/]+)/tilejson\.json)",
                 [this](const httplib::Request& req, httplib::Response& res) {
                     handle_tilejson(req, res);
                 });
        http.Get(R"(/tiles/(.*))", [this](const httplib::Request& req, httplib::Response& res) {
            handle_tile(req, res);
        });
        http.Get("/render", [this](const httplib::Request& req, httplib::Response& res) {
            handle_render(req, res);
        });
        http.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
            const auto* a = web::find_asset(req.path);
            if (!a) return send_error(res, 404, "not found");
            res.set_header("Cache-Control", "no-cache");
            res.set_content(reinterpret_cast<const char*>(a->data), a->size, a->mime);
        });
    }

    std::string info_json() const {
        nlohmann::json models_json = nlohmann::json::array();
        for (const auto& m : models) {
            const auto& s = m->engine->summary();
            nlohmann::json cfg;
            try {
                cfg = nlohmann::json::parse(s.config_json);
            } catch (...) {
                cfg = s.config_json;
            }
            nlohmann::json levels = nlohmann::json::array();
            {
                // Not while the measurement runs: the page would wait for it.
                std::unique_lock<std::mutex> lock(m->levels_mutex, std::try_to_lock);
                for (int z = -1; z >= opt.min_zoom; --z) {
                    nlohmann::json l = {{"z", z}};
                    if (lock.owns_lock() && m->levels_decided) {
                        const auto it = m->direct.find(z);
                        l["source"] =
                            it == m->direct.end() ? "box" : coarse_source_name(it->second);
                        const auto& st = s.coarse_students;
                        if (it == m->direct.end() && opt.coarse_preview &&
                            std::any_of(st.begin(), st.end(),
                                        [&](const auto& c) { return c.level == z; }))
                            l["preview"] = "student";
                        for (const auto& w : m->measured)
                            if (w.level == z)
                                l["psnr_db"][coarse_source_name(w.source)] =
                                    std::round(w.psnr_db * 100) / 100;
                    }
                    levels.push_back(l);
                }
            }
            models_json.push_back({{"name", m->spec.name},
                                   {"file", file_stem(m->spec.path)},
                                   {"sha256", s.sha256},
                                   {"config_name", s.config_name},
                                   {"config", cfg},
                                   {"parameters", s.parameters},
                                   {"patch_size", s.patch_size},
                                   {"upscale", s.upscale},
                                   {"step", s.step},
                                   {"partial_levels", s.partial_levels},
                                   {"levels", levels}});
        }
        return nlohmann::json{{"version", version_string()},
                              {"tile_size", opt.tile_size},
                              {"min_zoom", opt.min_zoom},
                              {"max_zoom", 0},
                              {"max_render_side", opt.max_render_side},
                              {"max_render_pixels", opt.max_render_pixels},
                              {"tiles", "/tiles/{model}/{seed}/{z}/{x}/{y}.png"},
                              {"tilejson", "/tiles/{model}/{seed}/tilejson.json"},
                              {"formats", webp_available() ? nlohmann::json{"png", "webp"}
                                                           : nlohmann::json{"png"}},
                              {"webp_quality", quality_text(opt.webp_quality)},
                              {"coarse", opt.coarse},
                              {"coarse_preview", opt.coarse_preview},
                              {"fusion",
                               {{"max_centres", kMaxFuseCentres},
                                {"band", 128},
                                {"query", "fuse=SEED:X:Y,...&band=B"}}},
                              {"models", models_json}}
            .dump();
    }

    std::string metrics_text() const {
        const auto& c = store.cache();
        std::string extra;
        auto gauge = [&](const char* name, const char* help, double v) {
            char line[256];
            std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name,
                          help, name, name, v);
            extra += line;
        };
        gauge("igan_tile_cache_bytes", "Bytes held by the tile cache.", double(c.bytes()));
        gauge("igan_tile_cache_capacity_bytes", "The cache bound.", double(c.capacity()));
        gauge("igan_tile_cache_entries", "Tiles in the cache.", double(c.entries()));
        gauge("igan_tile_cache_evictions", "Tiles evicted so far.", double(c.evictions()));
        const auto& rc = rgb_store.cache();
        gauge("igan_rgb_cache_bytes", "Bytes held by the RGB tile cache.", double(rc.bytes()));
        gauge("igan_rgb_cache_capacity_bytes", "The RGB cache bound.", double(rc.capacity()));
        gauge("igan_rgb_cache_entries", "Tiles in the RGB cache.", double(rc.entries()));
        gauge("igan_renders_active", "Renders running.", pool.active());
        gauge("igan_renders_waiting", "Renders waiting for a worker.", pool.waiting());
        gauge("igan_tiles_in_flight", "Distinct tiles being produced.", double(store.in_flight()));
        gauge("igan_http_connections", "Client connections being served.", http.connections());
        gauge("igan_refine_waiting", "Previewed tiles waiting to be refined.", refiner.waiting());
        gauge("igan_refine_done", "Previewed tiles refined so far.", double(refiner.done()));
        gauge("igan_refine_failed", "Refinements that failed (e.g. a full render queue).",
              double(refiner.failed()));
        gauge("igan_refine_dropped", "Refinements dropped from a full queue.",
              double(refiner.dropped()));
        return metrics.text(extra);
    }
};

TileServer::TileServer(ServeOptions options) {
    validate_serve_options(options);
    impl_ = std::make_unique<Impl>(std::move(options));
    for (const auto& spec : impl_->opt.models) {
        auto m = std::make_unique<Impl::Model>();
        m->spec = spec;
        m->engine =
            std::make_unique<Engine>(spec.path, impl_->opt.device, "", impl_->opt.precision);
        impl_->log("model " + spec.name + ": " + spec.path + " (" +
                   m->engine->summary().config_name + ")");
        impl_->models.push_back(std::move(m));
    }
    impl_->setup();
}

TileServer::~TileServer() {
    if (impl_) stop();
}

int TileServer::bind() {
    auto& o = impl_->opt;
    if (o.port == 0) {
        impl_->port = impl_->http.bind_to_any_port(o.host);
        if (impl_->port <= 0) throw Error("cannot bind " + o.host + " to a free port");
    } else {
        if (!impl_->http.bind_to_port(o.host, o.port))
            throw Error("cannot bind " + o.host + ":" + std::to_string(o.port) +
                        " (in use, or not a local address)");
        impl_->port = o.port;
    }
    return impl_->port;
}

void TileServer::run() {
    {
        std::lock_guard<std::mutex> lock(impl_->run_mutex);
        if (impl_->stop_requested) return;
        impl_->in_run = true;
    }
    impl_->log("serving on http://" + impl_->opt.host + ":" + std::to_string(impl_->port) + "/");
    impl_->http.listen_after_bind();
    impl_->in_run = false;
}

void TileServer::stop() {
    {
        std::lock_guard<std::mutex> lock(impl_->run_mutex);
        impl_->stop_requested = true;
        if (!impl_->in_run) return;
    }
    // run() may be between its check and listening: wait until httplib is running.
    while (impl_->in_run && !impl_->http.is_running())
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    impl_->http.begin_shutdown();
    impl_->http.stop();
}

int TileServer::port() const { return impl_->port; }
std::string TileServer::info_json() const { return impl_->info_json(); }
std::string TileServer::metrics_text() const { return impl_->metrics_text(); }

}  // namespace igan
