// Zoomed-out levels from the texture synthesizer's partial ToRGB sum (RenderOptions::rgb_index,
// GenerateRequest::level): the stopped synthesis equals the full one's partial sum, and a level
// keeps the canvas contract (tiled == direct, any order, batch or offset); the GPano packet of
// 360-degree panoramas.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "common/test_util.h"
#include "igan/igan.h"
#include "io/png.h"
#include "model/generator.h"
#include "render/coarse_head.h"
#include "render/renderer.h"

namespace igan {

CoarseHead random_coarse_head(const GeneratorConfig& c, int rgb_index);  // test_coarse_head.cpp

namespace {

using test::opts;

TEST(Levels, GeometryOfAPartialSum) {
    const auto c = test::micro_generator_config();
    const auto src = c.to_rgb_src_conv();
    ASSERT_GE(src.size(), 2u);
    const CanvasGeometry full(c);
    for (int k = 0; k + 1 < int(src.size()); ++k) {
        const CanvasGeometry geo(c, k);
        EXPECT_EQ(geo.upscale() * (int64_t{1} << (src.size() - 1 - k)), full.upscale());
        EXPECT_EQ(int(geo.strides().size()), src[k] + 1);
        for (int64_t n : {7, 12, 20})
            EXPECT_EQ(geo.output_size(n), ts_output_sizes(c, n)[size_t(src[k])]) << n;
    }
    const CanvasGeometry last(c, int(src.size()) - 1);
    EXPECT_EQ(last.upscale(), full.upscale());
    EXPECT_EQ(last.margin(), full.margin());
    EXPECT_THROW(CanvasGeometry(c, int(src.size())), Error);
}

// Stopping early computes exactly what the full synthesis sums at that ToRGB.
TEST(Levels, StoppedSynthesisEqualsTheFullPartialSum) {
    auto model = test::random_patch_model(test::micro_generator_config());
    const auto& c = model->config();
    torch::NoGradGuard no_grad;
    Generator g = test::micro_generator();
    const auto [z, w] = seed_latent_and_style(g, torch::kCPU, 1);
    const auto batch = make_patch_batch(c, {4, 0}, {{-2, 3}}, 9);
    auto z_s = g->structure_synthesizer(z, batch.local_latent, batch.coords);
    FeatureMap features;
    g->texture_synthesizer(z_s, style_for_every_layer(c, w), batch.noises, &features);
    const auto partial = make_patch_batch(c, {4, 0}, {{-2, 3}}, 9, 9, 0);
    EXPECT_EQ(int(partial.noises.size()), c.to_rgb_src_conv()[0] + 1);
    EXPECT_TRUE(test::all_close(model->synthesize(partial), features.at("ts_to_rgb0"), 1e-6));
}

TEST(Levels, TiledEqualsDirectAtAPartialLevel) {
    auto model = test::random_patch_model(test::micro_generator_config());
    const Rect r{-37, 11, 45, 29};  // in the level's pixels
    auto at_level = [](int64_t tile, int64_t batch, int64_t workers) {
        auto o = opts(tile, batch, 9, workers);
        o.rgb_index = 0;
        return o;
    };
    const auto direct = render_region(*model, r, at_level(64, 1, 1));
    ASSERT_EQ(direct.size(1), r.h);
    for (int64_t tile : {5, 16})
        for (int64_t batch : {1, 3})
            for (int64_t workers : {1, 2})
                EXPECT_TRUE(test::all_close(render_region(*model, r, at_level(tile, batch, workers)),
                                            direct, 1e-4))
                    << "tile " << tile << " batch " << batch << " workers " << workers;
    // A sub-rectangle rendered on its own is the same part of the level.
    const Rect sub{r.x + 13, r.y + 6, 17, 9};
    const auto part = render_region(*model, sub, at_level(8, 1, 1));
    EXPECT_TRUE(test::all_close(part, direct.narrow(1, 6, 9).narrow(2, 13, 17), 1e-4));
}

// A fused level mixes per layer at the layers' own sizes: fusing a style with itself, every
// pixel mixed, gives that style's level.
TEST(Levels, FusingAStyleWithItselfAtAPartialLevelChangesNothing) {
    const auto c = test::micro_generator_config();
    auto plain = test::random_patch_model(c);
    auto fused = test::random_patch_model(c);
    Generator g = test::micro_generator();
    torch::NoGradGuard no_grad;
    const auto [z, w] = seed_latent_and_style(g, torch::kCPU, 1);
    fused->fuse(torch::cat({z, z}), style_for_every_layer(c, torch::cat({w, w})),
                {{0, 0}, {30, 10}}, 64);
    for (int rgb : {0, -1}) {
        const auto batch = make_patch_batch(c, {4, 0}, {{-1, 0}}, 10, 10, rgb);
        EXPECT_TRUE(test::all_close(fused->synthesize(batch), plain->synthesize(batch), 1e-5, 1e-5))
            << "rgb_index " << rgb;
    }
    // A coarse head's modulations mix per pixel too (render/coarse_head.h).
    for (int source : coarse_sources(c)) {
        auto batch = make_patch_batch(c, {4, 0}, {{-1, 0}}, 10, 10, source);
        batch.head = std::make_shared<const CoarseHead>(random_coarse_head(c, source));
        EXPECT_TRUE(test::all_close(fused->synthesize(batch), plain->synthesize(batch), 1e-5, 1e-5))
            << "coarse head at rgb_index " << source;
    }
}

const std::string& tiny_model() {
    static const std::string path = [] {
        char dir[] = "/tmp/igan-levels-test-XXXXXX";
        if (!mkdtemp(dir)) throw std::runtime_error("mkdtemp");
        InitRequest r;
        r.config = "tiny";
        r.seed = 2;
        r.out = std::string(dir) + "/tiny.safetensors";
        init_model(r);
        return r.out;
    }();
    return path;
}

TEST(Levels, EngineRendersTheLevelsItLists) {
    const Engine engine(tiny_model());
    EXPECT_EQ(engine.summary().partial_levels, (std::vector<int>{-2, -1}));
    GenerateRequest r;
    r.seed = 3;
    r.x = -20;
    r.y = 7;
    r.width = 24;
    r.height = 16;
    r.level = -2;
    const auto whole = engine.render_rgb(r);
    ASSERT_EQ(whole.size(), size_t(3 * 24 * 16));
    // The right half on its own: the same bytes (the same windows: one tile each, same origin
    // cell is not required, only the same canvas).
    GenerateRequest half = r;
    half.x += 12;
    half.width = 12;
    const auto right = engine.render_rgb(half);
    int differing = 0;
    for (int64_t y = 0; y < 16; ++y)
        for (int64_t x = 0; x < 36; ++x)
            differing += right[size_t(y * 36 + x)] != whole[size_t(y * 72 + 36 + x)];
    EXPECT_LE(differing, 3);  // float round-off may flip a quantisation step, rarely
    r.level = -3;
    EXPECT_THROW(engine.render_rgb(r), UsageError);
    r.level = 1;
    EXPECT_THROW(engine.render_rgb(r), UsageError);
}

std::string read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}

TEST(Panorama, AWholeCyclicTurnAtTwoToOneCarriesGPano) {
    const Engine engine(tiny_model());
    char dir[] = "/tmp/igan-pano-test-XXXXXX";
    ASSERT_TRUE(mkdtemp(dir));
    GenerateRequest r;
    r.seed = 1;
    r.cyclic_width = 64;
    r.width = 64;
    r.height = 32;
    r.y = -16;
    r.out = std::string(dir) + "/pano.png";
    engine.generate(r);
    const auto text = read_png_text(r.out);
    ASSERT_TRUE(text.count("XML:com.adobe.xmp"));
    const std::string& xmp = text.at("XML:com.adobe.xmp");
    for (const char* field :
         {"<GPano:ProjectionType>equirectangular</GPano:ProjectionType>",
          "<GPano:UsePanoramaViewer>True</GPano:UsePanoramaViewer>",
          "<GPano:FullPanoWidthPixels>64</GPano:FullPanoWidthPixels>",
          "<GPano:FullPanoHeightPixels>32</GPano:FullPanoHeightPixels>",
          "<GPano:CroppedAreaImageWidthPixels>64</GPano:CroppedAreaImageWidthPixels>",
          "<GPano:CroppedAreaTopPixels>0</GPano:CroppedAreaTopPixels>", "<?xpacket end=\"w\"?>"})
        EXPECT_NE(xmp.find(field), std::string::npos) << field;
    // XMP in PNG is an uncompressed iTXt chunk with that keyword (XMP spec part 3, 1.1.5).
    const std::string file = read_file(r.out);
    const size_t at = file.find(std::string("iTXtXML:com.adobe.xmp") + '\0');
    ASSERT_NE(at, std::string::npos);
    EXPECT_EQ(file[at + 22], '\0');  // compression flag: none
    EXPECT_LT(at, file.find("IDAT"));
    // Not a whole turn, or not 2:1: no panorama.
    for (auto [w, h] : {std::pair<int64_t, int64_t>{128, 64}, {64, 40}}) {
        GenerateRequest o = r;
        o.width = w;
        o.height = h;
        o.out = std::string(dir) + "/strip.png";
        engine.generate(o);
        EXPECT_FALSE(read_png_text(o.out).count("XML:com.adobe.xmp")) << w << "x" << h;
        std::remove(o.out.c_str());
    }
    GenerateRequest plain = r;
    plain.cyclic_width = 0;
    plain.out = std::string(dir) + "/plain.png";
    engine.generate(plain);
    EXPECT_FALSE(read_png_text(plain.out).count("XML:com.adobe.xmp"));
    std::remove(plain.out.c_str());
    std::remove(r.out.c_str());
    rmdir(dir);
}

}  // namespace
}  // namespace igan
