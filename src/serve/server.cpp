// igan serve: XYZ tiles, /render, /healthz, /metrics, /api/info and the embedded viewer over
// cpp-httplib. Models are loaded once and shared read-only; each request renders with its own
// state (Engine::render_rgb is const). Native tiles render on a pool of worker threads with a
// bounded queue (503 beyond it), coarser levels are box-filtered from four finer tiles, and every
// tile goes through the byte-bounded LRU cache with single-flight production.
#include <httplib.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "igan/igan.h"
#include "igan/image.h"
#include "igan/serve.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/routes.h"
#include "serve/tile_cache.h"
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

// 2x2 box filter of an S x S RGB tile into the quadrant (qx, qy) of an S x S output.
void downsample_into(const RgbImage& child, int64_t size, int qx, int qy, uint8_t* out) {
    const int64_t half = size / 2;
    const uint8_t* in = child.pixels.data();
    for (int64_t j = 0; j < half; ++j) {
        const uint8_t* r0 = in + (2 * j) * size * 3;
        const uint8_t* r1 = r0 + size * 3;
        uint8_t* o = out + ((qy * half + j) * size + qx * half) * 3;
        for (int64_t i = 0; i < half; ++i)
            for (int c = 0; c < 3; ++c) {
                const int s = r0[6 * i + c] + r0[6 * i + 3 + c] + r1[6 * i + c] + r1[6 * i + 3 + c];
                o[3 * i + c] = uint8_t((s + 2) / 4);
            }
    }
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
    };

    explicit Impl(ServeOptions o)
        : opt(std::move(o)),
          store(opt.cache_mb * (int64_t{1} << 20)),
          pool(opt.workers, opt.queue),
          http(limits(opt)) {}

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
    std::vector<Model> models;
    TileStore store;
    RenderPool pool;
    Metrics metrics;
    HttpServer http;
    int port = -1;
    std::mutex run_mutex;
    bool stop_requested = false;
    std::atomic<bool> in_run{false};

    void log(const std::string& line) const {
        if (opt.log) opt.log(line);
    }

    const Model* find(const std::string& name) const {
        for (const auto& m : models)
            if (m.spec.name == name) return &m;
        return nullptr;
    }

    std::vector<uint8_t> render(const Model& m, uint64_t seed, int64_t x, int64_t y, int64_t w,
                                int64_t h, const Fusion& fusion) {
        GenerateRequest r;
        r.styles = fusion.styles;
        r.style_band = fusion.band;
        r.seed = seed;
        r.x = x;
        r.y = y;
        r.width = w;
        r.height = h;
        std::vector<uint8_t> rgb;
        const bool ran = pool.run([&] {
            const auto t0 = Clock::now();
            rgb = m.engine->render_rgb(r);
            metrics.rendered(seconds_since(t0));
        });
        if (!ran) {
            metrics.rejected();
            throw Busy();
        }
        return rgb;
    }

    static std::string key_of(const TileAddress& t, const Fusion& fusion) {
        return t.model + "/" + std::to_string(t.seed) + "/" + std::to_string(t.z) + "/" +
               std::to_string(t.x) + "/" + std::to_string(t.y) +
               (fusion.key.empty() ? "" : "?" + fusion.key);
    }

    // The fusion query of a request (400 on a malformed one).
    static ParseStatus fusion_of(const httplib::Request& req, Fusion* out) {
        auto param = [&](const char* name) {
            return req.has_param(name) ? req.get_param_value(name) : std::string();
        };
        if (req.has_param("fuse") && param("fuse").empty()) return {400, "fuse is empty"};
        if (req.has_param("band") && param("band").empty()) return {400, "band is empty"};
        return parse_fusion(param("fuse"), param("band"), out);
    }

    std::string etag(const Model& m, const std::string& what) const {
        return "\"" + m.engine->summary().sha256.substr(0, 16) + "-" + what + "\"";
    }

    Blob tile_png(const Model& m, const TileAddress& t, const Fusion& fusion, bool* cache_hit) {
        TileStore::Source source = TileStore::Source::kProduced;
        auto blob = store.get(
            key_of(t, fusion),
            [&]() -> std::string {
                const int64_t s = opt.tile_size;
                if (t.z == 0) {
                    const auto rgb = render(m, t.seed, t.x * s, t.y * s, s, s, fusion);
                    return encode_png(rgb.data(), s, s);
                }
                std::vector<uint8_t> out(size_t(s * s * 3));
                for (int q = 0; q < 4; ++q) {
                    TileAddress c = t;
                    c.z = t.z + 1;
                    c.x = 2 * t.x + (q & 1);
                    c.y = 2 * t.y + (q >> 1);
                    const auto child = decode_png(*tile_png(m, c, fusion, nullptr));
                    if (child.width != s || child.height != s)
                        throw Error("cached tile has the wrong size");
                    downsample_into(child, s, q & 1, q >> 1, out.data());
                }
                return encode_png(out.data(), s, s);
            },
            &source);
        if (cache_hit) *cache_hit = source == TileStore::Source::kCache;
        return blob;
    }

    void handle_tile(const httplib::Request& req, httplib::Response& res) {
        TileAddress t;
        const auto st = parse_tile_path(req.matches[1], opt.min_zoom, opt.tile_size, &t);
        if (!st.ok()) return send_error(res, st.status, st.error);
        const Model* m = find(t.model);
        if (!m) return send_error(res, 404, "no such model: " + t.model);
        Fusion fusion;
        const auto fs = fusion_of(req, &fusion);
        if (!fs.ok()) return send_error(res, fs.status, fs.error);
        const std::string tag = etag(*m, key_of(t, fusion));
        if (not_modified(req, res, tag)) return;
        try {
            bool hit = false;
            const auto png = tile_png(*m, t, fusion, &hit);
            metrics.tile(hit);
            res.set_header("X-Cache", hit ? "hit" : "miss");
            res.set_content(png->data(), png->size(), "image/png");
        } catch (const Busy& e) {
            res.set_header("Retry-After", "1");
            send_error(res, 503, e.what());
        } catch (const UsageError& e) {  // what the engine refuses to render
            send_error(res, 400, e.what());
        }
    }

    void handle_render(const httplib::Request& req, httplib::Response& res) {
        auto param = [&](const char* name) -> std::string {
            return req.has_param(name) ? req.get_param_value(name) : std::string();
        };
        int64_t x = 0, y = 0, w = 0, h = 0;
        for (auto [name, v] : {std::pair{"x", &x}, {"y", &y}, {"w", &w}, {"h", &h}})
            if (!parse_int64(param(name), v))
                return send_error(res, 400, std::string(name) + " must be a 64-bit integer");
        uint64_t seed = 0;
        if (req.has_param("seed") && !parse_uint64(param("seed"), &seed))
            return send_error(res, 400, "seed must be an unsigned 64-bit integer");
        const Model* m = req.has_param("model") ? find(param("model")) : &models.front();
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
        Fusion fusion;
        const auto fs = fusion_of(req, &fusion);
        if (!fs.ok()) return send_error(res, fs.status, fs.error);
        const std::string what = "r" + std::to_string(seed) + "_" + std::to_string(x) + "_" +
                                 std::to_string(y) + "_" + std::to_string(w) + "x" +
                                 std::to_string(h) + (fusion.key.empty() ? "" : "_fused");
        const std::string tag = etag(*m, what + (fusion.key.empty() ? "" : "?" + fusion.key));
        if (not_modified(req, res, tag)) return;
        try {
            const auto rgb = render(*m, seed, x, y, w, h, fusion);
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
            const auto& s = m.engine->summary();
            nlohmann::json cfg;
            try {
                cfg = nlohmann::json::parse(s.config_json);
            } catch (...) {
                cfg = s.config_json;
            }
            models_json.push_back({{"name", m.spec.name},
                                   {"file", file_stem(m.spec.path)},
                                   {"sha256", s.sha256},
                                   {"config_name", s.config_name},
                                   {"config", cfg},
                                   {"parameters", s.parameters},
                                   {"patch_size", s.patch_size},
                                   {"upscale", s.upscale},
                                   {"step", s.step}});
        }
        return nlohmann::json{{"version", version_string()},
                              {"tile_size", opt.tile_size},
                              {"min_zoom", opt.min_zoom},
                              {"max_zoom", 0},
                              {"max_render_side", opt.max_render_side},
                              {"max_render_pixels", opt.max_render_pixels},
                              {"tiles", "/tiles/{model}/{seed}/{z}/{x}/{y}.png"},
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
        gauge("igan_renders_active", "Renders running.", pool.active());
        gauge("igan_renders_waiting", "Renders waiting for a worker.", pool.waiting());
        gauge("igan_tiles_in_flight", "Distinct tiles being produced.", double(store.in_flight()));
        gauge("igan_http_connections", "Client connections being served.", http.connections());
        return metrics.text(extra);
    }
};

TileServer::TileServer(ServeOptions options) {
    validate_serve_options(options);
    impl_ = std::make_unique<Impl>(std::move(options));
    for (const auto& spec : impl_->opt.models) {
        Impl::Model m;
        m.spec = spec;
        m.engine = std::make_unique<Engine>(spec.path, impl_->opt.device);
        impl_->log("model " + spec.name + ": " + spec.path + " (" +
                   m.engine->summary().config_name + ")");
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
