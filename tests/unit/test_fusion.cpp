// Spatial style fusion (docs/applications.md): per-pixel modulation equals the plain path for a constant
// style, identical styles equal plain generation, and fused renders keep the render contract.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "igan/igan.h"
#include "model/layers.h"
#include "render/renderer.h"
#include "render/styled_generator.h"

namespace igan {
namespace {

constexpr double kTol = 1e-4;

using test::opts;

struct Palette {
    torch::Tensor z, w;  // (N, G), (N, n_latent, G)
};

// The plain styles of seeds, stacked as a fusion palette.
Palette palette_of(const StyledGenerator& model, Generator g, const std::vector<uint64_t>& seeds) {
    torch::NoGradGuard no_grad;
    const auto& c = model.config();
    std::vector<torch::Tensor> zs, ws;
    for (auto seed : seeds) {
        auto z = global_latent_for_seed(seed, c.global_latent_dim);
        zs.push_back(z);
        ws.push_back(g->texture_synthesizer->mapping(z).unsqueeze(1).expand(
            {1, c.n_latent(), c.global_latent_dim}));
    }
    return {torch::cat(zs), torch::cat(ws).contiguous()};
}


TEST(Fusion, ConstantPerPixelStyleEqualsVectorStyle) {
    torch::manual_seed(0);
    torch::NoGradGuard no_grad;
    for (bool upsample : {false, true}) {
        for (bool demodulate : {false, true}) {
            ModulatedConv2d conv(6, 5, upsample ? 3 : 3, 8, demodulate, upsample);
            const auto x = torch::randn({2, 6, 9, 9});
            const auto style = torch::randn({1, 8});
            // Two palette entries mixed 0.3 / 0.7 that average to `style`.
            const auto delta = torch::randn({1, 8});
            const auto palette = torch::cat({style + 0.7 * delta, style - 0.3 * delta});
            auto weights = torch::empty({2, 2, 9, 9});
            weights.select(1, 0).fill_(0.3);
            weights.select(1, 1).fill_(0.7);
            const auto mixed = conv->forward_mixed(x, StyleMix{palette, weights});
            EXPECT_TRUE(test::all_close(mixed, conv(x, style), 1e-5))
                << "upsample " << upsample << " demodulate " << demodulate;
        }
    }
}

TEST(Fusion, WeightsPartitionTheCanvas) {
    const std::vector<FusionCentre> centres{{0, 0}, {100, 0}, {50, 80}};
    const auto w = fusion_weights(centres, 20, -40, -40, 3.0, 60, 70);
    EXPECT_TRUE(test::all_close(w.sum(0), torch::ones({60, 70}), 1e-6));
    EXPECT_GE(w.min().item<float>(), 0.0f);
    // Far inside a region: exactly one style. On the bisector of two: half each.
    const auto at = [&](double x, double y) { return fusion_weights(centres, 20, y, x, 1, 1, 1); };
    EXPECT_FLOAT_EQ(at(-30, 0)[0].item<float>(), 1.0f);
    EXPECT_FLOAT_EQ(at(50, -30)[0].item<float>(), 0.5f);
    EXPECT_FLOAT_EQ(at(50, -30)[1].item<float>(), 0.5f);
    EXPECT_FLOAT_EQ(at(50, 200)[2].item<float>(), 1.0f);
}

TEST(Fusion, IdenticalStylesEqualPlainGeneration) {
    auto g = test::micro_generator();
    auto plain = StyledGenerator::for_seed(g, torch::kCPU, 4);
    auto fused = StyledGenerator::for_seed(g, torch::kCPU, 4);
    const auto p = palette_of(*fused, g, {4, 4, 4});
    // Centres close together so that every patch mixes (the per-pixel path runs).
    fused->fuse(p.z, p.w, {{0, 0}, {30, 5}, {10, 40}}, 24);
    const Rect r{-20, -10, 70, 60};
    EXPECT_TRUE(test::all_close(render_region(*fused, r, opts(32)),
                                render_region(*plain, r, opts(70)), kTol));
}

TEST(Fusion, TiledEqualsDirectAndCropsAgree) {
    auto g = test::micro_generator();
    auto fused = StyledGenerator::for_seed(g, torch::kCPU, 1);
    const auto p = palette_of(*fused, g, {1, 2, 3});
    fused->fuse(p.z, p.w, {{0, 0}, {60, 10}, {20, 50}}, 30);
    const Rect r{-15, -20, 90, 80};
    const auto direct = render_region(*fused, r, opts(90));
    for (int64_t tile : {13, 32}) {
        for (int64_t batch : {1, 3}) {
            EXPECT_TRUE(test::all_close(render_region(*fused, r, opts(tile, batch)), direct, kTol))
                << "tile " << tile << " batch " << batch;
        }
    }
    auto wide = opts(32, 2);
    wide.max_tile_height = 11;  // rectangular windows: rows and columns differ
    EXPECT_TRUE(test::all_close(render_region(*fused, r, wide), direct, kTol));
    const Rect inner{7, 3, 30, 25};
    const auto crop = direct.narrow(1, inner.y - r.y, inner.h).narrow(2, inner.x - r.x, inner.w);
    EXPECT_TRUE(test::all_close(render_region(*fused, inner, opts(30)), crop, kTol));
    // The styles really differ: fusion is not the plain render of the first style.
    auto plain = StyledGenerator::for_seed(g, torch::kCPU, 1);
    EXPECT_GT((render_region(*plain, r, opts(90)) - direct).abs().max().item<float>(), 0.05f);
}

// One parser for every front end: the documented SEED:X:Y form and the older SEED@X,Y form
// give the same centres; malformed text is a usage error.
TEST(StyleCentres, BothSyntaxesParseAlike) {
    const auto a = parse_style_centres("1:0:64,7:512.5:-3");
    const auto b = parse_style_centres("1@0,64;7@512.5,-3");
    ASSERT_EQ(a.size(), 2u);
    ASSERT_EQ(b.size(), 2u);
    for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(a[i].seed, b[i].seed);
        EXPECT_EQ(a[i].x, b[i].x);
        EXPECT_EQ(a[i].y, b[i].y);
    }
    EXPECT_EQ(a[1].seed, 7u);
    EXPECT_EQ(a[1].x, 512.5);
    EXPECT_EQ(a[1].y, -3.0);
    for (const char* bad : {"", "1:0", "1@0", "x:0:0", "-1:0:0", "1:0:0:0", "1:nan:0", "1.5:0:0"})
        EXPECT_THROW(parse_style_centres(bad), UsageError) << bad;
}

// The server's mode of the same grammar: exact integers, beyond what a double holds.
TEST(StyleCentres, IntegerModeIsExactBeyondDoubles) {
    const auto c = parse_integer_style_centres("18446744073709551615:1152921504606846975:-3,"
                                               "2:-1152921504606846975:9007199254740993");
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0].seed, 18446744073709551615ull);
    EXPECT_EQ(c[0].x, (int64_t(1) << 60) - 1);
    EXPECT_EQ(c[1].x, -((int64_t(1) << 60) - 1));
    EXPECT_EQ(c[1].y, (int64_t(1) << 53) + 1);  // a double would round it to 2^53
    // One grammar: the older form reads the same, the decimal mode the same seeds.
    const auto older = parse_integer_style_centres("7@5,-6;8@0,1");
    ASSERT_EQ(older.size(), 2u);
    EXPECT_EQ(older[0].seed, 7u);
    EXPECT_EQ(older[0].x, 5);
    EXPECT_EQ(older[0].y, -6);
    const auto decimal = parse_style_centres("7:5:-6,8:0:1");
    EXPECT_EQ(decimal[1].seed, older[1].seed);
    EXPECT_EQ(decimal[0].y, double(older[0].y));
    for (const char* bad : {"1:0.5:0", "1:1e3:0", "1:+3:0", "1:0:0,", ",", "1@0,0;", "",
                            "1:0:99999999999999999999"})
        EXPECT_THROW(parse_integer_style_centres(bad), UsageError) << bad;
    EXPECT_THROW(parse_style_centres("1:0:0,"), UsageError);
}

}  // namespace
}  // namespace igan
