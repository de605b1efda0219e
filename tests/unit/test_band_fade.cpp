// The local latent's fade beyond the training band (CanvasFields::fade_beyond_band): a function
// of the absolute row alone, so the render contract holds across the band's edge, and it changes
// nothing that only reads cells inside the band.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "model/coords.h"
#include "render/renderer.h"

namespace igan {
namespace {

constexpr double kTol = 1e-4;  // docs/contract.md

RenderOptions with_fade(int64_t tile, bool fade) {
    auto o = test::opts(tile);
    o.fields.fade_beyond_band = fade;
    return o;
}

TEST(BandFade, OneInsideTheBandDecayingBeyondIt) {
    const auto c = test::micro_generator_config(64);  // band: pixel rows -32 ... 32
    auto pixel = [&](int64_t row) { return double(ts_upscale(c) * row) + cell_center_offset(c); };
    double above = 1.0, below = 1.0;
    int inside = 0;
    for (int64_t k = 0; k < 60; ++k) {
        for (int64_t row : {-k, k}) {
            const double f = band_fade_factor(c, row);
            if (std::abs(pixel(row)) <= 32) {
                EXPECT_EQ(f, 1.0) << row;
                ++inside;
                continue;
            }
            double& last = row < 0 ? above : below;
            EXPECT_LT(f, last) << row;  // strictly smaller the farther out
            EXPECT_GT(f, 0.0) << row;
            last = f;
        }
    }
    EXPECT_GE(inside, 16);  // 64 px of 4-px cells
    EXPECT_LT(std::max(above, below), 1e-4);  // about 200 px out with a 19.2-px scale
}

TEST(BandFade, TiledEqualsDirectAcrossTheBandEdge) {
    auto model = test::random_patch_model(test::micro_generator_config(64));
    for (const Rect r : {Rect{-13, -90, 37, 140}, Rect{5, 10, 30, 75}}) {
        const auto direct = render_region(*model, r, with_fade(std::max(r.w, r.h), true));
        for (int64_t tile : {7, 16, 33}) {
            const auto tiled = render_region(*model, r, with_fade(tile, true));
            EXPECT_TRUE(test::all_close(tiled, direct, kTol)) << "tile " << tile;
        }
    }
}

TEST(BandFade, ChangesOnlyWhatReadsCellsBeyondTheBand) {
    auto model = test::random_patch_model(test::micro_generator_config(64));
    // Rows -6 ... 6 read cells within about 20 px of the horizon: unchanged.
    const Rect centre{0, -6, 40, 12};
    EXPECT_TRUE(test::all_close(render_region(*model, centre, with_fade(16, true)),
                                render_region(*model, centre, with_fade(16, false)), 0.0));
    for (const Rect far : {Rect{0, 120, 40, 20}, Rect{0, -140, 40, 20}}) {
        const auto faded = render_region(*model, far, with_fade(16, true));
        const auto texture = render_region(*model, far, with_fade(16, false));
        EXPECT_GT((faded - texture).abs().mean().item<double>(), 1e-3) << far.y;
        // Far out the latent is nearly zero: the rows vary less across the canvas.
        EXPECT_LT(faded.std().item<double>(), texture.std().item<double>()) << far.y;
    }
}

}  // namespace
}  // namespace igan
