// The render contract (docs/contract.md) on a small random model: padding-free patches, tiled == direct,
// crops of larger rectangles, far offsets, and independence from batch and thread count.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <atomic>
#include <random>
#include <thread>

#include "common/test_util.h"
#include "core/error.h"
#include "model/generator.h"
#include "render/renderer.h"

namespace igan {
namespace {

GeneratorConfig test_config() { return test::micro_generator_config(); }

using test::opts;

constexpr double kTol = 1e-4;  // docs/contract.md, on the [-1, 1] scale (outputs here are similar)

TEST(Render, PatchEqualsRegionOfLargerForward) {
    auto model = test::random_patch_model(test_config());
    PatchModel& m = *model;
    const GeneratorConfig& c = m.config();
    const CanvasGeometry geo(c);
    const CanvasFields fields{4, 0};
    torch::NoGradGuard no_grad;
    const auto big = m.synthesize(make_patch_batch(c, fields, {{-3, 5}}, 12));
    const auto small = m.synthesize(make_patch_batch(c, fields, {{-1, 8}}, 6));
    const int64_t up = geo.upscale();
    const auto crop = big.narrow(2, 2 * up, small.size(2)).narrow(3, 3 * up, small.size(3));
    EXPECT_TRUE(test::all_close(small, crop, 1e-5));
}

TEST(Render, TiledEqualsDirectOverTilesBatchesThreads) {
    auto model = test::random_patch_model(test_config());
    PatchModel& m = *model;
    std::mt19937 rng(1);
    for (int trial = 0; trial < 3; ++trial) {
        const Rect r{int64_t(rng() % 200) - 100, int64_t(rng() % 200) - 100,
                     40 + int64_t(rng() % 50), 30 + int64_t(rng() % 40)};
        const auto direct = render_region(m, r, opts(std::max(r.w, r.h)));
        for (int64_t tile : {7, 16, 33}) {
            for (int64_t batch : {1, 3}) {
                for (int threads : {1, 2}) {
                    for (int64_t workers : {1, 0, 3}) {
                        at::set_num_threads(threads);
                        const auto tiled = render_region(m, r, opts(tile, batch, 9, workers));
                        EXPECT_TRUE(test::all_close(tiled, direct, kTol))
                            << "tile " << tile << " batch " << batch << " threads " << threads
                            << " workers " << workers;
                    }
                }
            }
        }
    }
}

// Concurrent passes compute every tile exactly as a lone pass does, and hand tiles and strips
// over in the same order, on the calling thread.
TEST(Render, WorkersChangeNeitherPixelsNorDeliveryOrder) {
    auto model = test::random_patch_model(test_config());
    PatchModel& m = *model;
    const Rect r{-40, 17, 150, 70};
    auto trace = [&](int64_t workers, std::vector<std::string>& events) {
        const auto caller = std::this_thread::get_id();
        auto out = torch::zeros({3, r.h, r.w});
        render_tiles(
            m, r, opts(16, 2, 9, workers),
            [&](const Rect& t, const torch::Tensor& rgb) {
                EXPECT_EQ(std::this_thread::get_id(), caller);
                events.push_back("tile " + std::to_string(t.x) + "," + std::to_string(t.y));
                out.narrow(1, t.y - r.y, t.h).narrow(2, t.x - r.x, t.w).copy_(rgb);
            },
            [&](int64_t y0, int64_t rows) {
                events.push_back("strip " + std::to_string(y0) + "+" + std::to_string(rows));
            });
        return out;
    };
    at::set_num_threads(2);
    std::vector<std::string> one, many;
    const auto a = trace(1, one);
    const auto b = trace(4, many);
    EXPECT_EQ(one, many);
    EXPECT_EQ((a - b).abs().max().item<double>(), 0.0);
}

// A model that fails on its k-th forward pass.
class FailingModel : public PatchModel {
public:
    FailingModel(PatchModel& inner, int fail_at) : inner_(inner), fail_at_(fail_at) {}
    const GeneratorConfig& config() const override { return inner_.config(); }
    torch::Device device() const override { return inner_.device(); }
    torch::Tensor synthesize(const PatchBatch& batch) override {
        if (calls_++ == fail_at_) throw Error("pass failed");
        return inner_.synthesize(batch);
    }

private:
    PatchModel& inner_;
    int fail_at_;
    std::atomic<int> calls_{0};
};

TEST(Render, AFailingPassOrCallbackEndsAConcurrentRender) {
    auto model = test::random_patch_model(test_config());
    const Rect r{0, 0, 120, 60};
    for (int fail_at : {0, 5}) {
        FailingModel failing(*model, fail_at);
        EXPECT_THROW(render_region(failing, r, opts(16, 1, 9, 3)), Error) << fail_at;
    }
    int tiles = 0;
    EXPECT_THROW(render_tiles(
                     *model, r, opts(16, 1, 9, 3),
                     [&](const Rect&, const torch::Tensor&) {
                         if (++tiles == 4) throw Error("consumer failed");
                     },
                     [](int64_t, int64_t) {}),
                 Error);
    EXPECT_EQ(tiles, 4);
}

TEST(Render, RectEqualsCropOfLargerRectAtFarOffsets) {
    auto model = test::random_patch_model(test_config());
    PatchModel& m = *model;
    const int64_t far = int64_t(1) << 40;
    for (int64_t ox : {int64_t(0), int64_t(-77), far, -far}) {
        for (int64_t oy : {int64_t(0), -far, far}) {
            const Rect big{ox, oy, 64, 48};
            const Rect small{ox + 13, oy + 21, 30, 20};
            const auto a = render_region(m, big, opts(32));
            const auto b = render_region(m, small, opts(16, 2));
            EXPECT_TRUE(test::all_close(b, a.narrow(1, 21, 20).narrow(2, 13, 30), kTol))
                << "offset " << ox << ", " << oy;
        }
    }
}

// Wide, short tiles (rectangular z_S windows, as very wide renders use) change nothing either.
TEST(Render, WideShortTilesEqualDirect) {
    auto model = test::random_patch_model(test_config());
    PatchModel& m = *model;
    const Rect r{-33, 41, 97, 45};
    const auto direct = render_region(m, r, opts(97));
    for (int64_t cap : {4, 9, 16}) {
        auto o = opts(40, 2, 9, 2);
        o.max_tile_height = cap;
        EXPECT_TRUE(test::all_close(render_region(m, r, o), direct, kTol)) << "height " << cap;
    }
    auto cyclic = opts(24);
    cyclic.fields.cyclic_period_px = 48;
    const auto square = render_region(m, {-10, 0, 120, 20}, cyclic);
    cyclic.max_tile_height = 6;
    EXPECT_TRUE(test::all_close(render_region(m, {-10, 0, 120, 20}, cyclic), square, kTol));
}

TEST(Render, DifferentSeedsDiffer) {
    auto model = test::random_patch_model(test_config());
    PatchModel& m = *model;
    const Rect r{0, 0, 32, 32};
    const auto a = render_region(m, r, opts(32, 1, 1));
    const auto b = render_region(m, r, opts(32, 1, 2));
    EXPECT_GT((a - b).abs().max().item<double>(), 0.01);
}

TEST(Render, CyclicCanvasWrapsExactly) {
    auto model = test::random_patch_model(test_config());
    PatchModel& m = *model;
    auto o = opts(24);
    o.fields.cyclic_period_px = 48;
    const auto a = render_region(m, {-10, 0, 120, 20}, o);
    EXPECT_TRUE(test::all_close(a.narrow(2, 0, 72), a.narrow(2, 48, 72), kTol));
}

TEST(Render, PlanCoversTheRectExactly) {
    const auto plan = plan_tiles(test_config(), {5, -3, 100, 37}, opts(32));
    EXPECT_EQ(plan.cols, 4);
    EXPECT_EQ(plan.rows, 2);
    EXPECT_EQ(plan.tile_rect(1, 3).w, 4);
    EXPECT_EQ(plan.tile_rect(1, 3).h, 5);
    EXPECT_THROW(plan_tiles(test_config(), {0, 0, 0, 10}, opts(32)), Error);
    // Short rectangles get short tiles; a height cap makes wide, short tiles.
    const auto flat = plan_tiles(test_config(), {0, 0, 100, 12}, opts(32));
    EXPECT_EQ(flat.tile_h, 12);
    EXPECT_EQ(flat.rows, 1);
    auto capped = opts(32);
    capped.max_tile_height = 10;
    const auto wide = plan_tiles(test_config(), {0, 0, 100, 37}, capped);
    EXPECT_EQ(wide.tile_w, 32);
    EXPECT_EQ(wide.tile_h, 10);
    EXPECT_EQ(wide.rows, 4);
    EXPECT_LT(wide.window_h, wide.window_w);
}

TEST(Render, QuantizeMapsRangeToBytes) {
    const auto rgb = torch::tensor({-2.f, -1.f, 0.f, 1.f, 3.f, 0.5f}).view({3, 1, 2});
    std::vector<uint8_t> out(6);
    quantize_into(rgb, out.data(), 6, 0);
    EXPECT_EQ(out, (std::vector<uint8_t>{0, 128, 255, 0, 255, 191}));
}

}  // namespace
}  // namespace igan
