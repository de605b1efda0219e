// Tile server: byte-bounded LRU cache, single-flight production, the render pool, URL parsing,
// concurrent rendering through one shared Engine, and the HTTP server in-process on an
// ephemeral port with hostile input (httplib::Client and raw sockets).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <csignal>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "igan/igan.h"
#include "igan/image.h"
#include "igan/serve.h"
#include "serve/routes.h"
#include "serve/tile_cache.h"

namespace igan {
namespace {

Blob blob(size_t n, char c = 'x') { return std::make_shared<const std::string>(n, c); }

TEST(TileCache, BoundedInBytesAndLeastRecentlyUsedFirst) {
    LruCache cache(300);  // cost = value + key bytes
    cache.put("a", blob(99));
    cache.put("b", blob(99));
    cache.put("c", blob(99));
    EXPECT_EQ(cache.bytes(), 300);
    ASSERT_TRUE(cache.get("a"));  // a is now the most recent; b the least
    cache.put("d", blob(99));
    EXPECT_FALSE(cache.get("b"));
    EXPECT_TRUE(cache.get("a") && cache.get("c") && cache.get("d"));
    EXPECT_LE(cache.bytes(), 300);
    EXPECT_EQ(cache.evictions(), 1);
    cache.put("huge", blob(1000));  // larger than the whole cache: not stored, nothing evicted
    EXPECT_FALSE(cache.get("huge"));
    EXPECT_EQ(cache.entries(), 3);
    cache.put("a", blob(9));  // replacing an entry updates the byte count
    EXPECT_EQ(cache.bytes(), 10 + 100 + 100);
    LruCache none(0);
    none.put("a", blob(1));
    EXPECT_EQ(none.entries(), 0);
}

TEST(TileCache, EvictedValuesStayValidForTheirHolders) {
    LruCache cache(20);
    cache.put("a", blob(10, 'a'));
    Blob held = cache.get("a");
    cache.put("b", blob(10, 'b'));  // evicts a
    EXPECT_FALSE(cache.get("a"));
    EXPECT_EQ(*held, std::string(10, 'a'));
}

TEST(TileStore, ConcurrentRequestsForOneTileProduceItOnce) {
    TileStore store(1 << 20);
    std::atomic<int> calls{0};
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    std::vector<Blob> got(8);
    std::vector<TileStore::Source> sources(8);
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&, i] {
            ++ready;
            while (ready < 8) std::this_thread::yield();
            got[i] = store.get(
                "k",
                [&] {
                    ++calls;
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
                    return std::string("tile");
                },
                &sources[i]);
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(calls, 1);
    int produced = 0;
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(got[i].get(), got[0].get());  // one shared object
        produced += sources[i] == TileStore::Source::kProduced;
    }
    EXPECT_EQ(produced, 1);
    TileStore::Source s;
    store.get(
        "k", [&] { return std::string("again"); }, &s);
    EXPECT_EQ(s, TileStore::Source::kCache);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(store.in_flight(), 0);
}

TEST(TileStore, AFailureReachesEveryWaiterAndIsNotCached) {
    TileStore store(1 << 20);
    std::atomic<int> calls{0}, failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&] {
            try {
                store.get("k", [&]() -> std::string {
                    ++calls;
                    std::this_thread::sleep_for(std::chrono::milliseconds(50));
                    throw std::runtime_error("render failed");
                });
            } catch (const std::runtime_error&) {
                ++failures;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(failures, 4);
    EXPECT_GE(calls, 1);
    EXPECT_EQ(*store.get("k", [] { return std::string("ok"); }), "ok");  // retried, not cached
}

TEST(RenderPool, RunsOnWorkersAndRefusesWhenTheQueueIsFull) {
    RenderPool pool(1, 1);
    std::atomic<bool> release{false}, first_ran{false}, second_ran{false};
    const auto caller = std::this_thread::get_id();
    std::thread a([&] {
        EXPECT_TRUE(pool.run([&] {
            EXPECT_NE(std::this_thread::get_id(), caller);
            first_ran = true;
            while (!release) std::this_thread::yield();
        }));
    });
    while (pool.active() < 1) std::this_thread::yield();
    std::thread b([&] { EXPECT_TRUE(pool.run([&] { second_ran = true; })); });
    while (pool.waiting() < 1) std::this_thread::yield();
    EXPECT_FALSE(pool.run([] { ADD_FAILURE() << "ran although the queue was full"; }));
    release = true;
    a.join();
    b.join();
    EXPECT_TRUE(first_ran && second_ran);
    EXPECT_THROW(pool.run([] { throw std::runtime_error("x"); }), std::runtime_error);
    // The worker counts itself idle just after the caller has its result.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (pool.active() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    EXPECT_EQ(pool.active(), 0);
}

// The worker counts itself idle before run() returns: back-to-back jobs on one worker with no
// queue are never refused (they were, now and then, once renders got fast).
TEST(RenderPool, AWorkerIsFreeAgainWhenRunReturns) {
    RenderPool pool(1, 0);
    int refused = 0;
    for (int i = 0; i < 3000; ++i) refused += !pool.run([] {});
    EXPECT_EQ(refused, 0);
    EXPECT_EQ(pool.active(), 0);
}

// Newest first, one job per key, the oldest dropped beyond the capacity, a throwing job counted
// as failed; the destructor drops what waits.
TEST(BackgroundQueue, NewestFirstDeduplicatedAndBounded) {
    std::mutex m;
    std::condition_variable cv;
    bool release = false;
    std::vector<std::string> ran;
    auto queue = std::make_unique<BackgroundQueue>(2);
    // The first job holds the thread until the others are queued.
    ASSERT_TRUE(queue->add("hold", [&] {
        std::unique_lock<std::mutex> lock(m);
        cv.wait(lock, [&] { return release; });
    }));
    while (queue->waiting() > 0) std::this_thread::yield();  // "hold" is running
    EXPECT_FALSE(queue->add("hold", [] {}));                  // running: not added again
    auto record = [&](const std::string& k) {
        return [&, k] {
            std::lock_guard<std::mutex> lock(m);
            ran.push_back(k);
        };
    };
    EXPECT_TRUE(queue->add("a", record("a")));
    EXPECT_TRUE(queue->add("b", [] { throw std::runtime_error("no"); }));
    EXPECT_FALSE(queue->add("b", record("b")));  // waiting: not added again
    EXPECT_TRUE(queue->add("c", record("c")));   // "a", the oldest, is dropped
    EXPECT_EQ(queue->dropped(), 1);
    {
        std::lock_guard<std::mutex> lock(m);
        release = true;
    }
    cv.notify_all();
    while (queue->done() + queue->failed() < 3) std::this_thread::yield();
    EXPECT_EQ(ran, std::vector<std::string>({"c"}));
    EXPECT_EQ(queue->failed(), 1);
    EXPECT_TRUE(queue->add("a", record("a")));  // done keys may come again
    queue.reset();                              // joins (it may or may not have run "a")
}

TEST(ServeRoutes, StrictIntegers) {
    int64_t v = 0;
    uint64_t u = 0;
    EXPECT_TRUE(parse_int64("-9223372036854775808", &v));
    EXPECT_EQ(v, INT64_MIN);
    EXPECT_TRUE(parse_int64("0", &v));
    for (const char* s : {"", "-", "+1", " 1", "1 ", "0x10", "1e3", "9223372036854775808",
                          "99999999999999999999999", "1.5", "--1", "1/"})
        EXPECT_FALSE(parse_int64(s, &v)) << s;
    EXPECT_TRUE(parse_uint64("18446744073709551615", &u));
    EXPECT_FALSE(parse_uint64("18446744073709551616", &u));
    EXPECT_FALSE(parse_uint64("-1", &u));
}

TEST(ServeRoutes, TilePaths) {
    TileAddress t;
    auto status = [&](const std::string& p) { return parse_tile_path(p, -3, 256, &t).status; };
    EXPECT_EQ(status("m/7/0/-3/12.png"), 200);
    EXPECT_EQ(t.model, "m");
    EXPECT_EQ(t.seed, 7u);
    EXPECT_EQ(t.x, -3);
    EXPECT_EQ(t.y, 12);
    EXPECT_EQ(status("m/7/-3/1/1.png"), 200);
    EXPECT_EQ(t.z, -3);
    EXPECT_EQ(status("m/1/0/../../etc/passwd"), 404);
    EXPECT_EQ(status("../1/0/0/0.png"), 404);
    EXPECT_EQ(status("m/1/0/0/0.jpg"), 404);
    EXPECT_EQ(status("m/1/0/0/0.png/x"), 404);
    EXPECT_EQ(status("m%2F/1/0/0/0.png"), 404);
    EXPECT_EQ(status("m/x/0/0/0.png"), 400);
    EXPECT_EQ(status("m/-1/0/0/0.png"), 400);
    EXPECT_EQ(status("m/1/1/0/0.png"), 400);   // finer than native
    EXPECT_EQ(status("m/1/-4/0/0.png"), 400);  // coarser than min_zoom
    EXPECT_EQ(status("m/1/-99999999999999999999/0/0.png"), 400);
    EXPECT_EQ(status("m/1/0/99999999999999999999999/0.png"), 400);
    EXPECT_EQ(status("m/1/0/0/.png"), 404);
    EXPECT_EQ(status("m/1/0/0/1e3.png"), 400);
    // The canvas limit: x * 256 * 2^-z within +-2^60.
    const int64_t last = (kCanvasLimit / 256) - 1;
    EXPECT_EQ(status("m/1/0/" + std::to_string(last) + "/0.png"), 200);
    EXPECT_EQ(status("m/1/0/" + std::to_string(last + 1) + "/0.png"), 400);
    EXPECT_EQ(status("m/1/0/" + std::to_string(-last - 1) + "/0.png"), 200);
    EXPECT_EQ(status("m/1/0/" + std::to_string(-last - 2) + "/0.png"), 400);
    EXPECT_EQ(status("m/1/-3/" + std::to_string(last / 8) + "/0.png"), 200);
    EXPECT_EQ(status("m/1/-3/" + std::to_string(last / 8 + 1) + "/0.png"), 400);
    EXPECT_EQ(status("m/1/0/0/9223372036854775807.png"), 400);
    EXPECT_EQ(status("m/1/0/-9223372036854775808/0.png"), 400);
    const auto r = tile_region({"m", 1, -2, -1, 3}, 256);
    EXPECT_EQ(r.side, 1024);
    EXPECT_EQ(r.x0, -1024);
    EXPECT_EQ(r.y0, 3072);
}

TEST(ServeRoutes, FormatsScalesAndTheXyzScheme) {
    TileAddress t;
    auto status = [&](const std::string& p) { return parse_tile_path(p, -3, 256, &t).status; };
    ASSERT_EQ(status("m/7/-1/2/3.webp"), 200);
    EXPECT_EQ(t.format, TileFormat::kWebp);
    EXPECT_EQ(t.scale, 1);
    ASSERT_EQ(status("m/7/-1/2/3@2x.png"), 200);
    EXPECT_EQ(t.format, TileFormat::kPng);
    EXPECT_EQ(t.scale, 2);
    EXPECT_EQ(t.y, 3);
    ASSERT_EQ(status("m/7/0/2/-3"), 200);
    EXPECT_EQ(t.format, TileFormat::kNegotiated);
    EXPECT_EQ(t.y, -3);
    ASSERT_EQ(status("m/7/0/2/-3@2x"), 200);
    EXPECT_EQ(t.scale, 2);
    // xyz: zoom = z + 4, so 4 is native and 1 is z = -3.
    ASSERT_EQ(status("m/7/xyz/4/5/6.png"), 200);
    EXPECT_EQ(t.z, 0);
    EXPECT_EQ(t.x, 5);
    ASSERT_EQ(status("m/7/xyz/1/5/6"), 200);
    EXPECT_EQ(t.z, -3);
    EXPECT_EQ(status("m/7/xyz/0/5/6.png"), 400);  // z = -4, beyond min_zoom
    EXPECT_EQ(status("m/7/xyz/5/5/6.png"), 400);
    EXPECT_EQ(status("m/7/xyz/-1/5/6.png"), 400);
    EXPECT_EQ(status("m/7/abc/4/5/6.png"), 404);
    for (const char* bad : {"m/7/0/0/0@2x@2x.png", "m/7/0/0/@2x.png", "m/7/0/0/0@4x.png"})
        EXPECT_NE(status(bad), 200) << bad;
    EXPECT_EQ(status("m/7/0/0/0.png.webp"), 404);
    EXPECT_EQ(status("m/7/0/0/0.jpeg"), 404);
}

TEST(ServeRoutes, AcceptHeadersAndQualities) {
    EXPECT_EQ(negotiate_format(""), TileFormat::kPng);
    EXPECT_EQ(negotiate_format("*/*"), TileFormat::kPng);
    EXPECT_EQ(negotiate_format("image/png"), TileFormat::kPng);
    EXPECT_EQ(negotiate_format("image/avif,image/webp,image/apng,image/*,*/*;q=0.8"),
              TileFormat::kWebp);
    EXPECT_EQ(negotiate_format("image/png, image/webp ; q=0.5"), TileFormat::kWebp);
    EXPECT_EQ(negotiate_format("image/webp;q=0, image/png"), TileFormat::kPng);
    EXPECT_EQ(negotiate_format("image/webpx"), TileFormat::kPng);
    int q = 0;
    ASSERT_TRUE(parse_webp_quality("lossless", &q).ok());
    EXPECT_EQ(q, kWebpLossless);
    ASSERT_TRUE(parse_webp_quality("75", &q).ok());
    EXPECT_EQ(q, 75);
    for (const char* bad : {"0", "101", "-1", "", "80.5", "LOSSLESS"})
        EXPECT_EQ(parse_webp_quality(bad, &q).status, 400) << bad;
}

TEST(ServeRoutes, FusionQueries) {
    Fusion f;
    ASSERT_TRUE(parse_fusion("", "", &f).ok());
    EXPECT_TRUE(f.styles.empty());
    EXPECT_TRUE(f.key.empty());
    ASSERT_TRUE(parse_fusion("3:0:0,9:-512:40", "64", &f).ok());
    ASSERT_EQ(f.styles.size(), 2u);
    EXPECT_EQ(f.styles[1].seed, 9u);
    EXPECT_EQ(f.styles[1].x, -512);
    EXPECT_EQ(f.band, 64);
    EXPECT_EQ(f.key, "fuse=3:0:0,9:-512:40&band=64");
    for (const char* bad : {"3:0", "3:0:0:1", "x:0:0", "3:0.5:0", "3:0:0,4:0:0", "-3:0:0",
                            "3:1152921504606846977:0", "3:0:0,", ",", "3:0:0;4:1:1"})
        EXPECT_EQ(parse_fusion(bad, "", &f).status, 400) << bad;
    std::string many;
    for (int i = 0; i < 17; ++i)
        many += (i ? "," : "") + std::to_string(i) + ":" + std::to_string(i) + ":0";
    EXPECT_EQ(parse_fusion(many, "", &f).status, 400);
    for (const char* band : {"0", "-1", "1000001", "1.5", "x"})
        EXPECT_EQ(parse_fusion("1:0:0", band, &f).status, 400) << band;
}

TEST(ServeRoutes, ModelNames) {
    EXPECT_TRUE(valid_model_name("landscape-tiny_2.v1"));
    for (const char* s : {"", ".", "..", ".hidden", "a/b", "a b", "a%2e", "ü"})
        EXPECT_FALSE(valid_model_name(s)) << s;
    EXPECT_EQ(parse_serve_model("/x/y/landscape-tiny.safetensors").name, "landscape-tiny");
    EXPECT_EQ(parse_serve_model("land=/x/a=b.safetensors").path, "/x/a=b.safetensors");
    EXPECT_EQ(parse_serve_model("/x/a=b.safetensors").name, "a_b");
    EXPECT_EQ(parse_serve_model("/x/bad name.safetensors").name, "bad_name");
    EXPECT_THROW(parse_serve_model("x="), UsageError);
    EXPECT_THROW(parse_serve_model(""), UsageError);
}

// ---- A tiny model shared by the tests below ----------------------------------------------------

const std::string& tiny_model() {
    static const std::string path = [] {
        char dir[] = "/tmp/igan-serve-test-XXXXXX";
        if (!mkdtemp(dir)) throw std::runtime_error("mkdtemp");
        InitRequest r;
        r.config = "tiny";
        r.seed = 5;
        r.out = std::string(dir) + "/tiny.safetensors";
        init_model(r);
        return r.out;
    }();
    return path;
}

const Engine& tiny_engine() {
    static const Engine engine(tiny_model());
    return engine;
}

std::vector<uint8_t> render(uint64_t seed, int64_t x, int64_t y, int64_t w, int64_t h,
                            int64_t tile = 0, int level = 0) {
    GenerateRequest r;
    r.seed = seed;
    r.tile = tile;
    r.level = level;
    r.x = x;
    r.y = y;
    r.width = w;
    r.height = h;
    return tiny_engine().render_rgb(r);
}

double psnr_of(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    double se = 0;
    for (size_t i = 0; i < a.size(); ++i) se += double(int(a[i]) - int(b[i])) * (a[i] - b[i]);
    return se == 0 ? 99 : 10 * std::log10(255.0 * 255.0 * double(a.size()) / se);
}

TEST(ServeEngine, ConcurrentRendersEqualASingleThreadedRender) {
    const auto expected = render(3, -40, 17, 40, 36);
    std::vector<std::vector<uint8_t>> got(4);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([&, i] { got[i] = render(3, -40, 17, 40, 36); });
    for (auto& t : threads) t.join();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(got[i], expected) << "thread " << i;
}

TEST(ServeEngine, StreamRowsEqualsRenderRgb) {
    GenerateRequest r;
    r.seed = 3;
    r.x = 5;
    r.y = -30;
    r.width = 37;
    r.height = 50;
    r.tile = 16;  // several strips
    std::vector<uint8_t> rows(size_t(3 * r.width * r.height));
    int64_t next = 0, calls = 0;
    tiny_engine().stream_rows(r, [&](const uint8_t* data, int64_t y0, int64_t count) {
        EXPECT_EQ(y0, next);
        std::copy(data, data + 3 * r.width * count, rows.begin() + 3 * r.width * y0);
        next = y0 + count;
        ++calls;
    });
    EXPECT_EQ(next, r.height);
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(rows, tiny_engine().render_rgb(r));  // same tiles, same bytes
    EXPECT_THROW(tiny_engine().stream_rows(
                     r, [](const uint8_t*, int64_t, int64_t) { throw Error("consumer failed"); }),
                 Error);
}

// ---- The HTTP server in-process --------------------------------------------------------------

class ServerTest : public ::testing::Test {
protected:
    static constexpr int64_t kTile = 32;

    static void SetUpTestSuite() {
        signal(SIGPIPE, SIG_IGN);
        ServeOptions o;
        o.models = {parse_serve_model("tiny=" + tiny_model())};
        o.port = 0;
        o.tile_size = kTile;
        o.min_zoom = -2;
        o.cache_mb = 1;
        o.coarse = "box";
        o.max_render_side = 128;
        o.max_render_pixels = 128 * 64;
        o.timeout_ms = 300;
        o.http_threads = 8;
        server_ = new TileServer(o);
        port_ = server_->bind();
        thread_ = new std::thread([] { server_->run(); });
    }
    static void TearDownTestSuite() {
        const auto t0 = std::chrono::steady_clock::now();
        server_->stop();
        thread_->join();
        EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
        delete thread_;
        delete server_;
    }

    static httplib::Client client() {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(30, 0);
        return c;
    }
    static int status(const std::string& path) {
        auto res = client().Get(path.c_str());
        return res ? res->status : -1;
    }

    static TileServer* server_;
    static std::thread* thread_;
    static int port_;
};
TileServer* ServerTest::server_ = nullptr;
std::thread* ServerTest::thread_ = nullptr;
int ServerTest::port_ = 0;

TEST_F(ServerTest, HealthInfoAndMetrics) {
    auto c = client();
    auto h = c.Get("/healthz");
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
    auto info = c.Get("/api/info");
    ASSERT_TRUE(info);
    const auto j = nlohmann::json::parse(info->body);
    EXPECT_EQ(j["models"][0]["name"], "tiny");
    EXPECT_EQ(j["models"][0]["config_name"], "tiny");
    EXPECT_TRUE(j["models"][0]["config"].is_object());
    EXPECT_EQ(j["tile_size"], kTile);
    // A request is counted after its answer is written (the duration includes the write), so
    // on a loaded machine /healthz's count may land a moment after its answer: poll for it.
    const std::string healthz_count = "igan_http_requests_total{route=\"healthz\",code=\"200\"}";
    auto m = c.Get("/metrics");
    for (int i = 0; i < 100 && m && m->body.find(healthz_count) == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        m = c.Get("/metrics");
    }
    ASSERT_TRUE(m);
    EXPECT_NE(m->body.find(healthz_count), std::string::npos);
    EXPECT_NE(m->body.find("igan_http_request_duration_seconds_bucket{le=\"+Inf\"}"),
              std::string::npos);
    EXPECT_NE(m->body.find("igan_tile_cache_capacity_bytes 1048576"), std::string::npos);
    auto page = c.Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_NE(page->body.find("viewer.js"), std::string::npos);
    EXPECT_EQ(status("/viewer.js"), 200);
}

TEST_F(ServerTest, NativeTileEqualsTheEngineAndIsCachedWithAnETag) {
    auto c = client();
    auto res = c.Get("/tiles/tiny/9/0/-2/1.png");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "image/png");
    EXPECT_NE(res->get_header_value("Cache-Control").find("immutable"), std::string::npos);
    const auto img = decode_png(res->body);
    ASSERT_EQ(img.width, kTile);
    ASSERT_EQ(img.height, kTile);
    EXPECT_EQ(img.pixels, render(9, -2 * kTile, kTile, kTile, kTile));
    const std::string etag = res->get_header_value("ETag");
    ASSERT_FALSE(etag.empty());
    auto again = c.Get("/tiles/tiny/9/0/-2/1.png");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->get_header_value("X-Cache"), "hit");
    EXPECT_EQ(again->body, res->body);
    auto cond = c.Get("/tiles/tiny/9/0/-2/1.png", {{"If-None-Match", etag}});
    ASSERT_TRUE(cond);
    EXPECT_EQ(cond->status, 304);
    EXPECT_TRUE(cond->body.empty());
}

TEST_F(ServerTest, CoarserTilesAreBoxFilteredNativeTiles) {
    auto res = client().Get("/tiles/tiny/4/-1/-1/0.png");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    const auto img = decode_png(res->body);
    ASSERT_EQ(img.width, kTile);
    const auto full = render(4, -2 * kTile, 0, 2 * kTile, 2 * kTile);
    const int64_t w = 2 * kTile;
    for (int64_t j = 0; j < kTile; ++j)
        for (int64_t i = 0; i < kTile; ++i)
            for (int c = 0; c < 3; ++c) {
                auto px = [&](int64_t y, int64_t x) {
                    return int(full[size_t(3 * (y * w + x) + c)]);
                };
                const int sum = px(2 * j, 2 * i) + px(2 * j, 2 * i + 1) + px(2 * j + 1, 2 * i) +
                                px(2 * j + 1, 2 * i + 1);
                ASSERT_EQ(int(img.pixels[size_t(3 * (j * kTile + i) + c)]), (sum + 2) / 4)
                    << "at " << i << "," << j;
            }
    EXPECT_EQ(status("/tiles/tiny/4/-2/0/0.png"), 200);
}

TEST_F(ServerTest, HostileRequestsGet4xxAndTheServerSurvives) {
    const std::pair<std::string, int> cases[] = {
        {"/tiles/tiny/1/0/../../etc/passwd", 404},
        {"/tiles/tiny/1/0/%2e%2e/%2e%2e/etc/passwd", 404},
        {"/tiles/../../../etc/passwd", 404},
        {"/../../etc/passwd", 404},
        {"/tiles/tiny/x/0/0/0.png", 400},
        {"/tiles/tiny/1/0/99999999999999999999999/0.png", 400},
        {"/tiles/tiny/1/0/0/-99999999999999999999999.png", 400},
        {"/tiles/tiny/1/0/0/0x1.png", 400},
        {"/tiles/tiny/1/0/36028797018963968/0.png", 400},  // 2^55 * 32 = 2^60: outside
        {"/tiles/tiny/1/-3/0/0.png", 400},
        {"/tiles/tiny/1/5/0/0.png", 400},
        {"/tiles/tiny/1/-2147483649/0/0.png", 400},
        {"/tiles/nosuchmodel/1/0/0/0.png", 404},
        {"/tiles/tiny/1/0/0/0.gif", 404},
        {"/tiles/tiny/1/0/0/0@3x.png", 400},
        {"/tiles/tiny/1/xyz/5/0/0.png", 400},
        {"/tiles/tiny/1/0/0/0.png?quality=0", 400},
        {"/tiles/tiny/1/0/0/0.png?cyclic=-8", 400},
        {"/tiles/tiny/1/0/0/0.png?cyclic=64&fuse=1:0:0", 400},
        {"/tiles/tiny/x/tilejson.json", 400},
        {"/tiles/nosuchmodel/1/tilejson.json", 404},
        {"/render?x=0&y=0&w=8&h=8&z=-3", 400},
        {"/tiles/tiny", 404},
        {"/render?x=0&y=0&w=999999999&h=999999999", 413},
        {"/render?x=0&y=0&w=129&h=1", 413},
        {"/render?x=0&y=0&w=128&h=128", 413},  // over the pixel cap
        {"/render?x=0&y=0&w=0&h=10", 400},
        {"/render?x=0&y=0&w=-5&h=10", 400},
        {"/render?x=a&y=0&w=8&h=8", 400},
        {"/render?y=0&w=8&h=8", 400},
        {"/render?x=1152921504606846970&y=0&w=8&h=8", 400},
        {"/render?x=0&y=0&w=8&h=8&seed=-1", 400},
        {"/render?x=0&y=0&w=8&h=8&model=nosuch", 404},
        {"/nothing", 404},
        {"/" + std::string(10000, 'a'), 414},
    };
    for (const auto& [path, want] : cases) EXPECT_EQ(status(path), want) << path;
    auto c = client();
    auto post = c.Post("/tiles/tiny/1/0/0/0.png", std::string(100, 'x'), "text/plain");
    ASSERT_TRUE(post);
    EXPECT_GE(post->status, 400);
    EXPECT_LT(post->status, 500);
    EXPECT_EQ(status("/healthz"), 200);
}

std::string raw_exchange(int port, const std::string& request);

TEST_F(ServerTest, HugeBodiesAndMalformedRequestsAreRefused) {
    // A declared 10 MB body is refused from its Content-Length, before it is read.
    const auto big =
        raw_exchange(port_, "POST /render HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
    EXPECT_EQ(big.rfind("HTTP/1.1 413", 0), 0u) << big.substr(0, 40);
    const auto junk = raw_exchange(port_, "NONSENSE\r\n\r\n");
    EXPECT_EQ(junk.rfind("HTTP/1.1 4", 0), 0u) << junk.substr(0, 40);
    const auto header = raw_exchange(
        port_, "GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + std::string(20000, 'a') + "\r\n\r\n");
    EXPECT_TRUE(header.empty() || header.rfind("HTTP/1.1 4", 0) == 0) << header.substr(0, 40);
    EXPECT_EQ(status("/healthz"), 200);
}

TEST_F(ServerTest, FusedTilesEqualTheEngineAndAreCachedApart) {
    auto c = client();
    auto plain = c.Get("/tiles/tiny/2/0/0/0.png");
    auto fused = c.Get("/tiles/tiny/2/0/0/0.png?fuse=5:0:16,6:31:16&band=8");
    ASSERT_TRUE(plain && fused);
    ASSERT_EQ(fused->status, 200);
    EXPECT_NE(fused->body, plain->body);
    EXPECT_NE(fused->get_header_value("ETag"), plain->get_header_value("ETag"));
    GenerateRequest r;
    r.seed = 2;
    r.width = r.height = kTile;
    r.styles = {{5, 0, 16}, {6, 31, 16}};
    r.style_band = 8;
    EXPECT_EQ(decode_png(fused->body).pixels, tiny_engine().render_rgb(r));
    EXPECT_EQ(status("/tiles/tiny/2/0/0/0.png?fuse=5:0:16,6:0:16"), 400);
    EXPECT_EQ(status("/tiles/tiny/2/0/0/0.png?fuse="), 400);
    EXPECT_EQ(status("/render?x=0&y=0&w=8&h=8&fuse=5:0:0&band=0"), 400);
    EXPECT_EQ(status("/render?x=0&y=0&w=8&h=8&fuse=5:0:0,6:4:4"), 200);
}

TEST_F(ServerTest, RenderGivesTheRequestedRegion) {
    auto res = client().Get("/render?x=-7&y=3&w=40&h=20&seed=2");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    const auto img = decode_png(res->body);
    EXPECT_EQ(img.width, 40);
    EXPECT_EQ(img.height, 20);
    GenerateRequest r;  // in the server's tiles, so that it computes the very same windows
    r.seed = 2;
    r.x = -7;
    r.y = 3;
    r.width = 40;
    r.height = 20;
    r.tile = kTile;
    EXPECT_EQ(img.pixels, tiny_engine().render_rgb(r));
    EXPECT_NE(res->get_header_value("Content-Disposition").find("attachment"), std::string::npos);
}

// Pixels of a tile response, PNG or WebP by its Content-Type.
RgbImage pixels_of(const httplib::Result& res) {
    return res->get_header_value("Content-Type") == "image/webp" ? decode_webp(res->body)
                                                                  : decode_png(res->body);
}

TEST_F(ServerTest, WebpTilesAreNegotiatedOnAccept) {
    if (!webp_available()) GTEST_SKIP() << "built without libwebp";
    auto c = client();
    const httplib::Headers webp = {{"Accept", "image/avif,image/webp,*/*;q=0.8"}};
    auto png = c.Get("/tiles/tiny/9/0/-2/1.png", webp);  // an extension is not negotiated
    ASSERT_TRUE(png);
    EXPECT_EQ(png->get_header_value("Content-Type"), "image/png");
    EXPECT_FALSE(png->has_header("Vary"));
    auto lossless = c.Get("/tiles/tiny/9/0/-2/1?quality=lossless", webp);
    ASSERT_TRUE(lossless);
    ASSERT_EQ(lossless->status, 200);
    EXPECT_EQ(lossless->get_header_value("Content-Type"), "image/webp");
    EXPECT_EQ(lossless->get_header_value("Vary"), "Accept");
    EXPECT_EQ(pixels_of(lossless).pixels, decode_png(png->body).pixels);
    auto lossy = c.Get("/tiles/tiny/9/0/-2/1", webp);
    ASSERT_TRUE(lossy);
    EXPECT_EQ(lossy->get_header_value("Content-Type"), "image/webp");
    const auto approx = pixels_of(lossy);
    ASSERT_EQ(approx.width, kTile);
    EXPECT_GT(psnr_of(approx.pixels, decode_png(png->body).pixels), 15.0);  // random weights: noise
    EXPECT_LT(lossy->body.size(), lossless->body.size());
    auto plain = c.Get("/tiles/tiny/9/0/-2/1", {{"Accept", "image/png,*/*"}});
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->get_header_value("Content-Type"), "image/png");
    EXPECT_EQ(plain->get_header_value("Vary"), "Accept");
    EXPECT_EQ(plain->body, png->body);
    std::set<std::string> tags;
    for (const auto* r : {&png, &lossless, &lossy}) tags.insert((*r)->get_header_value("ETag"));
    EXPECT_EQ(tags.size(), 3u);
    auto again = c.Get("/tiles/tiny/9/0/-2/1.webp?quality=lossless");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->get_header_value("X-Cache"), "hit");
    EXPECT_EQ(again->body, lossless->body);
    auto revalidated =
        c.Get("/tiles/tiny/9/0/-2/1", {{"Accept", "image/webp"},
                                       {"If-None-Match", lossy->get_header_value("ETag")}});
    ASSERT_TRUE(revalidated);
    EXPECT_EQ(revalidated->status, 304);
    EXPECT_EQ(revalidated->get_header_value("Vary"), "Accept");
}

TEST_F(ServerTest, TwoXTilesCoverTheSameAreaAtTwiceTheSide) {
    auto c = client();
    auto two = c.Get("/tiles/tiny/6/-1/0/-1@2x.png");
    ASSERT_TRUE(two);
    ASSERT_EQ(two->status, 200);
    const auto img = decode_png(two->body);
    ASSERT_EQ(img.width, 2 * kTile);
    const auto native = render(6, 0, -2 * kTile, 2 * kTile, 2 * kTile, kTile);
    EXPECT_EQ(img.pixels, native);
    auto one = c.Get("/tiles/tiny/6/0/0/-1@2x.png");  // native: each pixel doubled
    ASSERT_TRUE(one);
    const auto doubled = decode_png(one->body);
    ASSERT_EQ(doubled.width, 2 * kTile);
    const auto tile = decode_png(c.Get("/tiles/tiny/6/0/0/-1.png")->body);
    for (int64_t y = 0; y < 2 * kTile; y += 7)
        for (int64_t x = 0; x < 2 * kTile; x += 5)
            for (int ch = 0; ch < 3; ++ch)
                ASSERT_EQ(doubled.pixels[size_t((y * 2 * kTile + x) * 3 + ch)],
                          tile.pixels[size_t(((y / 2) * kTile + x / 2) * 3 + ch)]);
}

// The required fields and types of TileJSON 3.0.0 (github.com/mapbox/tilejson-spec,
// 3.0.0/schema.json), and its template gives the /tiles pixels.
TEST_F(ServerTest, TileJsonFollowsTheThreeZeroZeroSchema) {
    auto c = client();
    auto res = c.Get("/tiles/tiny/9/tilejson.json?quality=60");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    const auto j = nlohmann::json::parse(res->body);
    ASSERT_TRUE(j.is_object());
    ASSERT_TRUE(j.contains("tilejson") && j["tilejson"].is_string());
    const std::string version = j["tilejson"];
    EXPECT_EQ(version, "3.0.0");
    ASSERT_TRUE(j.contains("tiles") && j["tiles"].is_array() && !j["tiles"].empty());
    for (const auto& t : j["tiles"]) ASSERT_TRUE(t.is_string());
    auto semver = [](const std::string& v) {  // the schema's pattern ^\d+\.\d+\.\d+\w?[\w\d]*$
        int dots = 0;
        for (char ch : v) dots += ch == '.';
        return dots == 2 && std::isdigit(static_cast<unsigned char>(v.front()));
    };
    EXPECT_TRUE(semver(version));
    for (const char* key : {"name", "description", "attribution", "version", "scheme"})
        if (j.contains(key)) {
            EXPECT_TRUE(j[key].is_string()) << key;
        }
    EXPECT_TRUE(semver(j["version"]));
    EXPECT_TRUE(j["scheme"] == "xyz" || j["scheme"] == "tms");
    for (const char* key : {"minzoom", "maxzoom"}) {
        ASSERT_TRUE(j.contains(key) && j[key].is_number_integer()) << key;
        EXPECT_GE(int(j[key]), 0);
        EXPECT_LE(int(j[key]), 30);
    }
    EXPECT_LE(int(j["minzoom"]), int(j["maxzoom"]));
    EXPECT_EQ(int(j["maxzoom"]) - int(j["minzoom"]), 2);  // this server's min_zoom -2
    ASSERT_TRUE(j["center"].is_array() && j["center"].size() == 3);
    for (const auto& v : j["center"]) EXPECT_TRUE(v.is_number());
    EXPECT_FALSE(j.contains("bounds"));  // an unbounded canvas
    for (const char* key : {"data", "grids", "vector_layers"})
        if (j.contains(key)) {
            EXPECT_TRUE(j[key].is_array()) << key;
        }
    // The template, filled in, is a tile of the native level in the xyz scheme.
    std::string url = j["tiles"][0];
    const std::string host = "http://127.0.0.1:" + std::to_string(port_);
    ASSERT_EQ(url.rfind(host, 0), 0u) << url;
    url = url.substr(host.size());
    for (auto [from, to] : {std::pair<std::string, std::string>{"{z}", std::to_string(int(j["maxzoom"]))},
                            {"{x}", "-2"},
                            {"{y}", "1"}})
        url.replace(url.find(from), from.size(), to);
    EXPECT_NE(url.find("quality=60"), std::string::npos);
    auto tile = c.Get(url.c_str());
    ASSERT_TRUE(tile);
    ASSERT_EQ(tile->status, 200) << url;
    EXPECT_EQ(pixels_of(tile).pixels.size(), size_t(3 * kTile * kTile));
    auto png = c.Get((url.substr(0, url.find('?')) + ".png").c_str());
    ASSERT_TRUE(png);
    EXPECT_EQ(decode_png(png->body).pixels, render(9, -2 * kTile, kTile, kTile, kTile));
}

TEST_F(ServerTest, ErrorsAreNeitherCachedNorTagged) {
    auto c = client();
    // Refused after the ETag was computed: by the engine (the period is not a multiple of 8).
    for (const char* path : {"/tiles/tiny/1/0/0/0.png?cyclic=12", "/tiles/nosuch/1/0/0/0.png",
                             "/tiles/tiny/1/0/0/0.png?quality=0", "/render?x=0&y=0&w=8&h=8&cyclic=12"}) {
        auto res = c.Get(path);
        ASSERT_TRUE(res) << path;
        EXPECT_GE(res->status, 400) << path;
        EXPECT_EQ(res->get_header_value_count("Cache-Control"), 1u) << path;
        EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store") << path;
        EXPECT_FALSE(res->has_header("ETag")) << path;
    }
}

TEST_F(ServerTest, CyclicTilesRepeatWithThePeriod) {
    auto c = client();
    auto a = c.Get("/tiles/tiny/3/0/1/0.png?cyclic=64");  // the period is two tiles
    auto b = c.Get("/tiles/tiny/3/0/-1/0.png?cyclic=64");
    ASSERT_TRUE(a && b);
    ASSERT_EQ(a->status, 200);
    EXPECT_EQ(b->get_header_value("X-Cache"), "hit");
    EXPECT_EQ(a->body, b->body);
    GenerateRequest r;
    r.seed = 3;
    r.x = kTile;
    r.width = r.height = kTile;
    r.cyclic_width = 64;
    EXPECT_EQ(decode_png(a->body).pixels, tiny_engine().render_rgb(r));
    EXPECT_NE(decode_png(c.Get("/tiles/tiny/3/0/1/0.png")->body).pixels, decode_png(a->body).pixels);
}

int connect_raw(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(uint16_t(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

std::string raw_exchange(int port, const std::string& request) {
    const int fd = connect_raw(port);
    if (fd < 0) return "connect failed";
    (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        out.append(buf, size_t(n));
        if (out.find("\r\n\r\n") != std::string::npos) break;
    }
    close(fd);
    return out;
}

TEST_F(ServerTest, SlowClientsAreCutOffAndDoNotBlockOthers) {
    std::vector<int> slow;
    for (int i = 0; i < 4; ++i) {
        const int fd = connect_raw(port_);
        ASSERT_GE(fd, 0);
        const char partial[] = "GET /healthz HTTP/1.1\r\nHost: x";
        ASSERT_GT(send(fd, partial, sizeof partial - 1, 0), 0);
        slow.push_back(fd);
    }
    EXPECT_EQ(status("/healthz"), 200);  // others are still served
    const auto t0 = std::chrono::steady_clock::now();
    for (int fd : slow) {
        char buf[256];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        }
        EXPECT_EQ(n, 0) << "the server should close a stalled connection";
        close(fd);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

// Everything the server sends until it closes (or 5 s pass).
std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, size_t(n));
    return out;
}

int count_of(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

// One header byte every 50 ms never trips a per-read timeout; the request as a whole must
// arrive within timeout_ms (300 here) of its first byte.
TEST_F(ServerTest, SlowDripClientsAreCutOffWithinTheRequestTimeout) {
    const int fd = connect_raw(port_);
    ASSERT_GE(fd, 0);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_GT(send(fd, "GET /healthz HTTP/1.1\r\nX-Drip: ", 31, MSG_NOSIGNAL), 0);
    std::string answer;
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3)) {
        if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) break;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            answer = read_all(fd);
            break;
        }
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    close(fd);
    EXPECT_LT(took, std::chrono::milliseconds(1500)) << "a dripping client was never cut off";
    EXPECT_EQ(answer.rfind("HTTP/1.1 408", 0), 0u) << answer.substr(0, 60);
}

TEST_F(ServerTest, PipelinedRequestsAreAnsweredInOrder) {
    const int fd = connect_raw(port_);
    ASSERT_GE(fd, 0);
    const std::string requests =
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n"
        "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(send(fd, requests.data(), requests.size(), MSG_NOSIGNAL), ssize_t(requests.size()));
    const std::string out = read_all(fd);
    close(fd);
    const size_t a = out.find("HTTP/1.1 200"), b = out.find("HTTP/1.1 200", a + 1),
                 c = out.find("HTTP/1.1 404");
    ASSERT_NE(b, std::string::npos) << out.substr(0, 200);
    ASSERT_NE(c, std::string::npos) << out.substr(0, 200);
    EXPECT_LT(b, c);
    EXPECT_NE(out.find("\"tile_size\""), std::string::npos);  // the second is /api/info's
    EXPECT_EQ(count_of(out, "HTTP/1.1 "), 3);
}

TEST_F(ServerTest, HalfClosedClientsGetTheirAnswer) {
    const int fd = connect_raw(port_);
    ASSERT_GE(fd, 0);
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    shutdown(fd, SHUT_WR);
    const std::string out = read_all(fd);
    close(fd);
    EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out.substr(0, 60);
}

TEST_F(ServerTest, Http10AnswersCloseWithoutKeepAlive) {
    const auto out = raw_exchange(port_, "GET /healthz HTTP/1.0\r\n\r\n");
    EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out.substr(0, 60);
    EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
    EXPECT_EQ(out.find("Keep-Alive"), std::string::npos) << out;
}

TEST_F(ServerTest, OnlyGetAndHeadAreAllowed) {
    for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"}) {
        const auto out = raw_exchange(
            port_, std::string(method) + " /tiles/tiny/1/0/0/0.png HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_EQ(out.rfind("HTTP/1.1 405", 0), 0u) << method << ": " << out.substr(0, 60);
        EXPECT_NE(out.find("Allow: GET, HEAD"), std::string::npos) << method;
    }
    const auto head = raw_exchange(port_, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head.substr(0, 60);
}

TEST_F(ServerTest, BadLengthsAndOversizedHeadsAreRefused) {
    const auto negative =
        raw_exchange(port_, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n");
    EXPECT_EQ(negative.rfind("HTTP/1.1 400", 0), 0u) << negative.substr(0, 60);
    const auto big = raw_exchange(
        port_, "GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + std::string(9000, 'a') + "\r\n\r\n");
    EXPECT_EQ(big.rfind("HTTP/1.1 431", 0), 0u) << big.substr(0, 60);
    EXPECT_EQ(status("/healthz"), 200);
}

// A separate server: its per-client connection cap is 2 and its timeout long enough for idle
// connections to hold their slots.
TEST(ServeLimits, ConnectionsPerClientAreCapped) {
    ServeOptions o;
    o.models = {parse_serve_model("tiny=" + tiny_model())};
    o.port = 0;
    o.tile_size = 32;
    o.timeout_ms = 3000;
    o.max_client_connections = 2;
    TileServer server(o);
    const int port = server.bind();
    std::thread t([&] { server.run(); });
    const int a = connect_raw(port), b = connect_raw(port);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    for (int i = 0; i < 500 && server.metrics_text().find("igan_http_connections 2") ==
                                   std::string::npos; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const auto refused = raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused.substr(0, 60);
    EXPECT_NE(refused.find("too many connections"), std::string::npos) << refused;
    close(a);
    close(b);
    std::string later;
    for (int i = 0; i < 100 && later.rfind("HTTP/1.1 200", 0) != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        later = raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    EXPECT_EQ(later.rfind("HTTP/1.1 200", 0), 0u) << "slots are released when clients leave";
    server.stop();
    t.join();
}

// Shutdown must not wait for clients: a dripping one and an idle keep-alive one are dropped
// within about timeout_ms.
TEST(ServeLimits, SlowClientsDoNotDelayShutdown) {
    ServeOptions o;
    o.models = {parse_serve_model("tiny=" + tiny_model())};
    o.port = 0;
    o.tile_size = 32;
    o.timeout_ms = 500;
    TileServer server(o);
    const int port = server.bind();
    std::thread t([&] { server.run(); });
    std::atomic<bool> done{false};
    std::thread drip([&] {
        const int fd = connect_raw(port);
        (void)!send(fd, "GET /healthz HTTP/1.1\r\n", 23, MSG_NOSIGNAL);
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!done && std::chrono::steady_clock::now() < give_up &&
               send(fd, "X", 1, MSG_NOSIGNAL) == 1)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        close(fd);
    });
    const int idle = connect_raw(port);
    const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)!send(idle, request.data(), request.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto t0 = std::chrono::steady_clock::now();
    server.stop();
    t.join();
    const auto took = std::chrono::steady_clock::now() - t0;
    done = true;
    drip.join();
    close(idle);
    EXPECT_LT(took, std::chrono::milliseconds(1500));
}

TEST(ServeQueue, FullQueueAnswers503) {
    ServeOptions o;
    o.models = {parse_serve_model("tiny=" + tiny_model())};
    o.port = 0;
    o.tile_size = 32;
    o.workers = 1;
    o.queue = 0;
    o.max_render_side = 4096;
    TileServer server(o);
    const int port = server.bind();
    std::thread t([&] { server.run(); });
    std::thread slow([&] {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(60, 0);
        auto res = c.Get("/render?x=0&y=0&w=256&h=128");
        EXPECT_TRUE(res && res->status == 200)
            << (res ? std::to_string(res->status) + " " + res->body
                    : httplib::to_string(res.error()));
    });
    // A machine fast enough to finish the render between two polls must fail, not hang.
    bool active = false;
    for (const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
         !active && std::chrono::steady_clock::now() < deadline;) {
        active = server.metrics_text().find("igan_renders_active 1") != std::string::npos;
        if (!active) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!active) {
        slow.join();
        server.stop();
        t.join();
        FAIL() << "the slow render never showed as active";
    }
    httplib::Client c("127.0.0.1", port);
    auto res = c.Get("/tiles/tiny/1/0/0/0.png");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 503);
    EXPECT_EQ(res->get_header_value("Retry-After"), "1");
    slow.join();
    EXPECT_EQ(c.Get("/tiles/tiny/1/0/0/0.png")->status, 200);  // a 503 is not cached
    server.stop();
    t.join();
}

// A server of its own for each test below, on an ephemeral port, stopped on scope exit.
class LocalServer {
public:
    explicit LocalServer(ServeOptions o, const std::string& model = tiny_model()) {
        o.models = {parse_serve_model("tiny=" + model)};
        o.port = 0;
        server_ = std::make_unique<TileServer>(o);
        port_ = server_->bind();
        thread_ = std::thread([this] { server_->run(); });
    }
    ~LocalServer() {
        server_->stop();
        thread_.join();
    }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port_);
        c.set_read_timeout(60, 0);
        return c;
    }
    // The RGB of a square tile or /render response.
    std::vector<uint8_t> get(const std::string& path) const {
        auto res = client().Get(path.c_str());
        if (!res || res->status != 200)
            throw std::runtime_error(path + ": " + (res ? std::to_string(res->status) : "-"));
        return decode_png(res->body).pixels;
    }
    TileServer& server() { return *server_; }

private:
    std::unique_ptr<TileServer> server_;
    std::thread thread_;
    int port_ = 0;
};

// Copies a side x side tile into column/row (i, j) of an n x n mosaic of such tiles.
void paste(const std::vector<uint8_t>& tile, int64_t side, int64_t i, int64_t j, int64_t n,
           std::vector<uint8_t>* out) {
    for (int64_t y = 0; y < side; ++y)
        std::copy(tile.begin() + 3 * y * side, tile.begin() + 3 * (y + 1) * side,
                  out->begin() + 3 * ((j * side + y) * n * side + i * side));
}

// 2x2 box filter (rounded) of a side x side RGB image.
std::vector<uint8_t> box2(const std::vector<uint8_t>& in, int64_t side) {
    const int64_t h = side / 2;
    std::vector<uint8_t> out(size_t(3 * h * h));
    for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < h; ++x)
            for (int ch = 0; ch < 3; ++ch) {
                auto px = [&](int64_t yy, int64_t xx) {
                    return int(in[size_t((yy * side + xx) * 3 + ch)]);
                };
                out[size_t((y * h + x) * 3 + ch)] =
                    uint8_t((px(2 * y, 2 * x) + px(2 * y, 2 * x + 1) + px(2 * y + 1, 2 * x) +
                             px(2 * y + 1, 2 * x + 1) + 2) / 4);
            }
    return out;
}

// Issue 20: the same region requested as tiles in two random orders, and by /render, gives
// byte-identical pixels, at the native level and at zoomed-out ones (partial sums, and box
// filters of those), with nothing cached so that every tile is computed afresh each time.
TEST(ServeOrder, TilesInAnyOrderAndRenderGiveTheSamePixels) {
    ServeOptions o;
    o.tile_size = 16;
    o.min_zoom = -3;
    o.cache_mb = 0;
    o.rgb_cache_mb = 0;
    o.coarse = "partial";
    LocalServer s(o);
    const int64_t n = 2, side = 16, x0 = -1, y0 = 1;  // a 2x2 block of tiles
    for (int z : {0, -1, -2, -3}) {
        std::vector<std::pair<int64_t, int64_t>> cells;
        for (int64_t j = 0; j < n; ++j)
            for (int64_t i = 0; i < n; ++i) cells.emplace_back(i, j);
        std::vector<std::vector<uint8_t>> mosaics;
        for (unsigned order_seed : {1u, 2u}) {
            std::mt19937 rng(order_seed + 10 * unsigned(-z));
            std::shuffle(cells.begin(), cells.end(), rng);
            std::vector<uint8_t> mosaic(size_t(3 * n * n * side * side));
            for (const auto& [i, j] : cells)
                paste(s.get("/tiles/tiny/5/" + std::to_string(z) + "/" + std::to_string(x0 + i) +
                            "/" + std::to_string(y0 + j) + ".png"),
                      side, i, j, n, &mosaic);
            mosaics.push_back(std::move(mosaic));
        }
        EXPECT_EQ(mosaics[0], mosaics[1]) << "z " << z;
        if (z >= -2) {  // levels the engine renders directly
            EXPECT_EQ(s.get("/render?seed=5&z=" + std::to_string(z) + "&x=" +
                            std::to_string(x0 * side) + "&y=" + std::to_string(y0 * side) +
                            "&w=32&h=32"),
                      mosaics[0])
                << "z " << z;
        } else {  // box-filtered from level -2, which /render gives directly
            EXPECT_EQ(box2(s.get("/render?seed=5&z=-2&x=" + std::to_string(2 * x0 * side) +
                                 "&y=" + std::to_string(2 * y0 * side) + "&w=64&h=64"),
                           64),
                      mosaics[0]);
        }
    }
    // What the tiles of a partial level are: the engine's render of that level.
    EXPECT_EQ(s.get("/tiles/tiny/5/-1/3/-2.png"), render(5, 3 * side, -2 * side, side, side, side, -1));
}

// --coarse auto measures each partial level once against the box filter and keeps those at or
// above the threshold; /api/info reports the measurement.
TEST(ServeCoarse, AutoChoosesLevelsByTheirMeasuredPsnr) {
    for (double threshold : {0.0, 99.0}) {
        ServeOptions o;
        o.tile_size = 16;
        o.min_zoom = -2;
        o.coarse_min_psnr = threshold;
        LocalServer s(o);
        auto info = nlohmann::json::parse(s.client().Get("/api/info")->body);
        EXPECT_FALSE(info["models"][0]["levels"][0].contains("source"));  // not measured yet
        const auto tile = s.get("/tiles/tiny/4/-1/0/0.png");
        info = nlohmann::json::parse(s.client().Get("/api/info")->body);
        const auto& levels = info["models"][0]["levels"];
        ASSERT_EQ(levels.size(), 2u);
        for (const auto& l : levels) {
            ASSERT_TRUE(l.contains("psnr_db")) << l.dump();
            EXPECT_EQ(l["source"], threshold == 0 ? "partial" : "box") << l.dump();
        }
        EXPECT_EQ(tile, threshold == 0 ? render(4, 0, 0, 16, 16, 16, -1)
                                       : box2(s.get("/render?seed=4&x=0&y=0&w=32&h=32"), 32));
        EXPECT_EQ(s.client().Get("/render?seed=4&x=0&y=0&w=16&h=16&z=-1")->status,
                  threshold == 0 ? 200 : 400);
    }
}

// A coarse student (igan fit-coarse --student) joins --coarse auto's measurement: it serves its
// level where its PSNR against the box filter reaches the threshold, the box filter elsewhere;
// --coarse student serves it unmeasured. /api/info reports the measurement.
// A random tiny model in `dir` with a (barely fitted) coarse student at -3 in its side file.
std::string tiny_with_student(const std::string& dir) {
    InitRequest init;
    init.config = "tiny";
    init.seed = 5;
    init.out = dir + "/tiny.safetensors";
    init_model(init);
    FitCoarseRequest f;
    f.model = init.out;
    f.student = true;
    f.student_levels = {-3};
    f.student_samples = 2;
    f.held_out = 0;
    f.student_side = 4;
    f.student_steps = 2;
    fit_coarse(f);
    return init.out;
}

// The student's 16-px tile (0, 0) of seed 4 at -3, as the engine renders it.
std::vector<uint8_t> student_tile_of(const std::string& model) {
    GenerateRequest r;
    r.seed = 4, r.level = -3, r.coarse_student = true, r.width = r.height = r.tile = 16;
    return Engine(model).render_rgb(r);
}

TEST(ServeCoarse, StudentServesItsLevelOnlyWhereItsPsnrPasses) {
    char dir[] = "/tmp/igan-serve-student-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir));
    InitRequest init;
    init.out = tiny_with_student(dir);
    const auto student_tile = student_tile_of(init.out);
    for (const char* mode : {"auto", "student"})
        for (double threshold : {0.0, 99.0}) {
            ServeOptions o;
            o.tile_size = 16;
            o.min_zoom = -3;
            o.coarse = mode;
            o.coarse_min_psnr = threshold;
            LocalServer s(o, init.out);
            const auto tile = s.get("/tiles/tiny/4/-3/0/0.png");
            const auto info = nlohmann::json::parse(s.client().Get("/api/info")->body);
            const auto& level = info["models"][0]["levels"][2];
            ASSERT_EQ(level["z"], -3);
            const bool student = std::string(mode) == "student" || threshold == 0;
            EXPECT_EQ(level["source"], student ? "student" : "box") << mode << " " << threshold;
            EXPECT_EQ(level.contains("psnr_db"), std::string(mode) == "auto") << level.dump();
            if (student) {
                EXPECT_EQ(tile, student_tile) << mode << " " << threshold;
            }
        }
    std::filesystem::remove_all(dir);
}

// A box-filtered level with a student answers a cold tile with the student's tile at once,
// marked as a preview that must be revalidated, and makes the exact tile in the background;
// then the exact tile (immutable, its own ETag) is served. With previews off: the exact tile.
TEST(ServeCoarse, PreviewTilesAreRefinedToTheExactTile) {
    char dir[] = "/tmp/igan-serve-preview-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir));
    const auto model = tiny_with_student(dir);
    const auto student_tile = student_tile_of(model);
    ServeOptions o;
    o.tile_size = 16;
    o.min_zoom = -3;
    o.coarse_min_psnr = 99;  // the student is not direct: -3 is box-filtered
    const char* path = "/tiles/tiny/4/-3/0/0.png";
    std::vector<uint8_t> exact;
    {
        o.coarse_preview = false;
        LocalServer s(o, model);
        const auto res = s.client().Get(path);
        ASSERT_TRUE(res && res->status == 200);
        EXPECT_FALSE(res->has_header("X-Igan-Preview"));
        exact = decode_png(res->body).pixels;
        const auto info = nlohmann::json::parse(s.client().Get("/api/info")->body);
        EXPECT_FALSE(info["models"][0]["levels"][2].contains("preview"));
    }
    ASSERT_NE(exact, student_tile);
    o.coarse_preview = true;
    LocalServer s(o, model);
    auto res = s.client().Get(path);
    ASSERT_TRUE(res && res->status == 200);
    EXPECT_EQ(res->get_header_value("X-Igan-Preview"), "student");
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-cache");
    const std::string preview_tag = res->get_header_value("ETag");
    EXPECT_NE(preview_tag.find("~preview"), std::string::npos) << preview_tag;
    EXPECT_EQ(decode_png(res->body).pixels, student_tile);
    const auto info = nlohmann::json::parse(s.client().Get("/api/info")->body);
    EXPECT_EQ(info["models"][0]["levels"][2]["preview"], "student");
    // 64 native 16-px tiles in the background: well within the deadline.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (res && res->has_header("X-Igan-Preview") &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        res = s.client().Get(path, {{"If-None-Match", preview_tag}});
    }
    ASSERT_TRUE(res && res->status == 200);
    EXPECT_FALSE(res->has_header("X-Igan-Preview"));
    EXPECT_EQ(res->get_header_value("Cache-Control"), "public, max-age=31536000, immutable");
    EXPECT_EQ(decode_png(res->body).pixels, exact);
    const auto metrics = s.server().metrics_text();
    const auto counter = [&](const std::string& name) {
        const size_t at = metrics.find("\n" + name + " ");
        return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + name.size() + 2));
    };
    EXPECT_GE(counter("igan_tile_previews_total"), 1);
    EXPECT_EQ(counter("igan_refine_done"), 1);
    EXPECT_EQ(counter("igan_refine_failed"), 0);
    std::filesystem::remove_all(dir);
}

// A native tile or /render costs one render: the coarse levels are measured at the first coarse
// request, not before the first native one (whose renders then competed for the queue).
TEST(ServeCoarse, NativeRequestsMeasureNothing) {
    ServeOptions o;
    o.tile_size = 16;
    o.min_zoom = -2;
    LocalServer s(o);
    s.get("/tiles/tiny/4/0/0/0.png");
    s.get("/render?seed=4&x=0&y=0&w=16&h=16");
    const auto info = nlohmann::json::parse(s.client().Get("/api/info")->body);
    EXPECT_FALSE(info["models"][0]["levels"][0].contains("source"));  // not measured
    const auto metrics = s.client().Get("/metrics")->body;
    EXPECT_NE(metrics.find("\nigan_tiles_rendered_total 2\n"), std::string::npos) << metrics;
}

TEST(ServeOptions, Validation) {
    ServeOptions o;
    EXPECT_THROW(validate_serve_options(o), UsageError);  // no model
    o.models = {{"a", "x"}, {"a", "y"}};
    EXPECT_THROW(validate_serve_options(o), UsageError);  // duplicate names
    o.models = {{"a", "x"}};
    validate_serve_options(o);
    o.min_zoom = -5;
    EXPECT_THROW(validate_serve_options(o), UsageError);
    o.min_zoom = 0;
    o.tile_size = 33;
    EXPECT_THROW(validate_serve_options(o), UsageError);
    o.tile_size = 32;
    validate_serve_options(o);
    using Change = std::function<void(ServeOptions&)>;
    const Change bad[] = {[](ServeOptions& x) { x.coarse = "fast"; },
                          [](ServeOptions& x) { x.coarse_min_psnr = -1; },
                          [](ServeOptions& x) { x.rgb_cache_mb = -1; },
                          [](ServeOptions& x) { x.webp_quality = 0; },
                          [](ServeOptions& x) { x.webp_quality = 101; }};
    for (const auto& change : bad) {
        ServeOptions b = o;
        change(b);
        EXPECT_THROW(validate_serve_options(b), UsageError);
    }
    o.webp_quality = kWebpLossless;
    validate_serve_options(o);
}

}  // namespace
}  // namespace igan
