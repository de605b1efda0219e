// Fitted coarse heads (render/coarse_head.h, igan fit-coarse): the least-squares fit, the level
// a head renders (the head of the rendered features, the same whatever the tiling; fusion in
// test_levels.cpp), the lag of a level against the full image, and the strict side file Engine
// loads next to its model.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "common/test_util.h"
#include "igan/igan.h"
#include "io/safetensors.h"
#include "render/coarse_head.h"
#include "render/renderer.h"

namespace igan {
namespace {

using test::opts;

// A target that is an exact linear map of the features is recovered, whatever the batches.
TEST(CoarseHead, FitRecoversAnExactLinearMap) {
    torch::manual_seed(5);
    const auto w = torch::randn({3, 6}), b = torch::randn({3});
    HeadFit fit(6);
    for (int i = 0; i < 3; ++i) {
        const auto f = torch::randn({6, 5, 7});
        const auto t = torch::einsum("oc,chw->ohw", {w, f}) + b.view({3, 1, 1});
        fit.add(f, t);
    }
    EXPECT_EQ(fit.pixels(), 3 * 35);
    const auto head = fit.solve(0, 0.0);
    EXPECT_TRUE(test::all_close(head.weight, w, 1e-4));
    EXPECT_TRUE(test::all_close(head.bias, b, 1e-4));
    // The ridge pulls the weights toward 0 and leaves the bias free.
    EXPECT_LT(fit.solve(0, 10.0).weight.abs().sum().item<double>(), w.abs().sum().item<double>());
}

}  // namespace

// A head of random weights; test_levels.cpp uses it too.
CoarseHead random_coarse_head(const GeneratorConfig& c, int rgb_index) {
    torch::manual_seed(7);
    CoarseHead h;
    h.rgb_index = rgb_index;
    h.weight = torch::randn({3, coarse_channels(c, rgb_index)}) * 0.1;
    h.bias = torch::randn({3});
    return h;
}

namespace {

// A head's level is the head applied to the rendered features, and it keeps the canvas
// contract: tiled, batched and concurrent renders equal one direct render.
TEST(CoarseHead, TiledHeadLevelEqualsTheHeadOfTheFeatures) {
    const auto c = test::micro_generator_config();
    auto model = test::random_patch_model(c);
    const Rect r{-23, 9, 30, 21};  // in the level's pixels
    for (int source : coarse_sources(c)) {
        const auto head = std::make_shared<const CoarseHead>(random_coarse_head(c, source));
        auto with = [&](int64_t tile, int64_t batch, int64_t workers, bool features) {
            auto o = opts(tile, batch, 9, workers);
            o.rgb_index = source;
            o.head = features ? nullptr : head;
            o.features = features;
            return o;
        };
        const auto features = render_region(*model, r, with(64, 1, 1, true));
        ASSERT_EQ(features.size(0), coarse_channels(c, source));
        const auto direct = render_region(*model, r, with(64, 1, 1, false));
        EXPECT_TRUE(test::all_close(direct, head->apply(features.unsqueeze(0))[0], 1e-4))
            << "source " << source;
        for (int64_t tile : {6, 16})
            for (int64_t batch : {1, 3})
                EXPECT_TRUE(test::all_close(render_region(*model, r, with(tile, batch, 2, false)),
                                            direct, 1e-4))
                    << "source " << source << " tile " << tile << " batch " << batch;
    }
}

// The lag of a level (canvas.h) for the tiny config, worked out by hand from the layer table:
// native margin 35 at 8 px per cell; ToRGB 1: margin 15 at 4, ToRGB 0: 5 at 2, z_S: 0 at 1.
TEST(CoarseHead, LagOfEachLevel) {
    GeneratorConfig c;
    c.ts_conv_out_channels = {64, 64, 64, 64, 32, 32};
    c.ts_input_size = 11;
    EXPECT_DOUBLE_EQ(CanvasGeometry(c).lag(), 0.0);
    EXPECT_DOUBLE_EQ(CanvasGeometry(c, 1).lag(), (35.0 - 2 * 15) / 4);
    EXPECT_DOUBLE_EQ(CanvasGeometry(c, 0).lag(), (35.0 - 4 * 5) / 8);
    EXPECT_DOUBLE_EQ(CanvasGeometry(c, kStructureLevel).lag(), 35.0 / 16);
    EXPECT_EQ(coarse_level(c, 1), -1);
    EXPECT_EQ(coarse_level(c, 0), -2);
    EXPECT_EQ(coarse_level(c, kStructureLevel), -3);
}

}  // namespace

// A fresh tiny model in a folder of its own (the test removes it); test_coarse_student.cpp
// uses it too.
std::string tiny_model_copy(const char* name) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("igan-coarse-" + std::to_string(::getpid()) + "-" + name);
    std::filesystem::create_directories(dir);
    InitRequest r;
    r.config = "tiny";
    r.seed = 2;
    r.out = (dir / "tiny.safetensors").string();
    init_model(r);
    return r.out;
}

namespace {

// fit-coarse writes the side file; Engine loads it and renders each head level; a file that
// is not strictly right is an error listing the problem; one fitted on other weights is set
// aside with a note.
TEST(CoarseHead, SideFileRoundTripAndStrictLoading) {
    const auto model = tiny_model_copy("side");
    FitCoarseRequest f;
    f.model = model;
    f.samples = 2;
    f.held_out = 1;
    f.side = 4;
    const auto fit = fit_coarse(f);
    EXPECT_EQ(fit.path, coarse_heads_path_for(model));
    ASSERT_EQ(fit.levels.size(), 3u);
    {
        const Engine engine(model);
        const auto& s = engine.summary();
        ASSERT_EQ(s.coarse_heads.size(), 3u);
        EXPECT_EQ(s.coarse_heads_path, fit.path);
        GenerateRequest r;
        r.seed = 3, r.x = -5, r.y = 2, r.width = 12, r.height = 8;
        r.coarse_head = true;
        for (int level : {-1, -2, -3}) {
            r.level = level;
            EXPECT_EQ(engine.render_rgb(r).size(), size_t(3 * 12 * 8)) << level;
        }
        r.level = -4;
        EXPECT_THROW(engine.render_rgb(r), UsageError);
    }
    auto file = read_safetensors(fit.path);
    const auto good = file;
    file.tensors["coarse.extra"] = torch::zeros({1});
    file.tensors["coarse.z_s.weight"] = torch::zeros({3, 2});
    write_safetensors(fit.path, file);
    try {
        const Engine engine(model);
        ADD_FAILURE() << "a broken side file loaded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unexpected coarse.extra"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("coarse.z_s.weight must be"), std::string::npos);
    }
    file = good;
    file.metadata["igan.model_sha256"] = std::string(64, '0');
    write_safetensors(fit.path, file);
    const Engine stale(model);
    EXPECT_TRUE(stale.summary().coarse_heads.empty());
    EXPECT_NE(stale.summary().coarse_heads_note.find("refit"), std::string::npos);
    std::filesystem::remove_all(std::filesystem::path(model).parent_path());
}

}  // namespace
}  // namespace igan
