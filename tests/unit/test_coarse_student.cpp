// Coarse students (render/coarse_student.h, igan fit-coarse --student): a level rendered by the
// student keeps the canvas contract (tiled, batched, concurrent and fused renders equal one
// direct pass over the region's fields), Adam lowers the loss, and the side file that holds
// students loads strictly and keeps the heads fitted before.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/test_util.h"
#include "igan/igan.h"
#include "io/safetensors.h"
#include "render/coarse_student.h"
#include "render/renderer.h"
#include "render/styled_generator.h"

namespace igan {

std::string tiny_model_copy(const char* name);  // test_coarse_head.cpp

namespace {

using test::opts;

// A narrow student of the micro generator: level -2 reads one cell per pixel, -3 two.
std::shared_ptr<CoarseStudent> random_student(const GeneratorConfig& c, int level) {
    torch::manual_seed(11);
    auto s = std::make_shared<CoarseStudent>();
    s->config = CoarseStudentConfig::for_level(c, level);
    s->config.channels = 8;
    s->config.dilations = {1, 2};
    s->net = CoarseStudentNet(s->config);
    torch::NoGradGuard no_grad;
    for (auto& p : s->net->parameters()) p.normal_(0, 0.15);  // the FiLM too, not zero
    s->net->eval();
    return s;
}

RenderOptions student_opts(std::shared_ptr<const CoarseStudent> s, int64_t tile, int64_t batch,
                           int64_t workers) {
    auto o = opts(tile, batch, 9, workers);
    o.rgb_index = kStructureLevel;
    o.student = std::move(s);
    return o;
}

TEST(CoarseStudent, TiledLevelEqualsOneDirectPass) {
    const auto c = test::micro_generator_config();
    auto model = test::random_patch_model(c);
    const Rect r{-23, 9, 30, 21};  // in the level's pixels
    for (int level : {-2, -3}) {
        const auto s = random_student(c, level);
        ASSERT_EQ(s->config.cells, level == -2 ? 1 : 2);
        // The whole region as one batch of fields through the network, by hand.
        CanvasFields fields;
        fields.seed = 9;
        const auto in = student_patch_batch(s->config, c, fields, {{r.y, r.x}}, r.h, r.w);
        torch::NoGradGuard no_grad;
        auto g = test::micro_generator();  // random_patch_model's weights, styled by seed 1
        const auto style = seed_latent_and_style(g, torch::kCPU, 1).second;
        const auto direct = s->net->forward(in.local_latent, in.coords, style)[0];
        ASSERT_EQ(direct.sizes(), at::IntArrayRef({3, r.h, r.w}));
        for (int64_t tile : {5, 16, 64})
            for (int64_t batch : {1, 3})
                EXPECT_TRUE(test::all_close(
                    render_region(*model, r, student_opts(s, tile, batch, 2)), direct, 1e-5, 1e-5))
                    << "level " << level << " tile " << tile << " batch " << batch;
    }
}

// With style fusion each style's image is mixed by the weights at the level's pixels: a
// function of global positions, so tiles still equal one render.
TEST(CoarseStudent, FusedLevelIsTheSameWhateverTheTiling) {
    const auto c = test::micro_generator_config();
    auto model = test::random_patch_model(c);
    torch::manual_seed(4);
    const auto z = torch::randn({2, c.global_latent_dim});
    model->fuse(z, style_for_every_layer(c, torch::randn({2, c.global_latent_dim})),
                {{-60, 40}, {40, 60}}, 32);
    const auto s = random_student(c, -2);
    const Rect r{-20, 0, 24, 20};
    const auto direct = render_region(*model, r, student_opts(s, 64, 1, 1));
    EXPECT_TRUE(
        test::all_close(render_region(*model, r, student_opts(s, 7, 2, 2)), direct, 1e-5, 1e-5));
}

TEST(CoarseStudent, AdamStepsLowerTheLossOnAFixedBatch) {
    const auto c = test::micro_generator_config();
    auto s = random_student(c, -3);
    CanvasFields fields;
    fields.seed = 3;
    const auto in = student_patch_batch(s->config, c, fields, {{0, 0}, {5, -7}}, 6, 6);
    torch::manual_seed(2);
    const auto styles = torch::randn({2, c.global_latent_dim});
    const auto target = torch::rand({2, 3, 6, 6}) * 2 - 1;
    torch::optim::Adam adam(s->net->parameters(), torch::optim::AdamOptions(1e-2));
    const double first = student_train_step(s->net, adam, in, styles, target);
    double last = first;
    for (int i = 0; i < 30; ++i) last = student_train_step(s->net, adam, in, styles, target);
    EXPECT_LT(last, 0.8 * first);
}

// The colour map is the least-squares affine map: it recovers one exactly from varied colours,
// and with flat probes (one colour each) it moves those colours where they belong while the
// ridge keeps the rest of the map near the identity.
TEST(CoarseStudent, ColourMapRecoversAnAffineMapAndStaysNearTheIdentityOnFlatProbes) {
    torch::manual_seed(5);
    const auto from = torch::rand({3, 500}) * 2 - 1;
    const auto a = torch::eye(3) * 0.8 + torch::randn({3, 3}) * 0.1;
    const auto b = torch::randn({3, 1}) * 0.2;
    const auto map = fit_colour_map(from, a.mm(from) + b, 0);
    EXPECT_TRUE(test::all_close(map, torch::cat({a, b}, 1), 1e-4, 1e-4)) << map;
    // Applied to an image: the same map per pixel.
    const auto img = torch::rand({2, 3, 4, 5}) * 2 - 1;
    const auto by_hand = (a.mm(img.permute({1, 0, 2, 3}).reshape({3, -1})) + b)
                             .reshape({3, 2, 4, 5})
                             .permute({1, 0, 2, 3});
    EXPECT_TRUE(test::all_close(apply_colour_map(map, img), by_hand, 1e-5, 1e-5));

    // Three flat probes: sky, horizon, ground, each a tone off.
    const auto tones = torch::tensor({{0.2f, -0.5f, 0.1f}, {0.6f, 0.0f, -0.4f}, {0.3f, -0.2f, -0.3f}});
    const auto wanted = tones + torch::tensor({0.1f, -0.15f, 0.05f});
    const auto flat_from = tones.t().repeat_interleave(256, 1);   // (3, 768)
    const auto flat_to = wanted.t().repeat_interleave(256, 1);
    const auto flat = fit_colour_map(flat_from, flat_to);
    const auto got = apply_colour_map(flat, tones.t().view({1, 3, 3, 1})).view({3, 3}).t();
    EXPECT_LT((got - wanted).abs().max().item<double>(), 0.03) << got;
    EXPECT_LT((flat.narrow(1, 0, 3) - torch::eye(3)).abs().max().item<double>(), 0.5) << flat;
}

// A style's colour map applies to the student's image of that style: tiles still equal one
// direct render, and the result is the map applied to the uncoloured render.
TEST(CoarseStudent, ColouredLevelIsTheMapOfThePlainOneWhateverTheTiling) {
    const auto c = test::micro_generator_config();
    auto model = test::random_patch_model(c);
    const auto s = random_student(c, -2);
    const Rect r{-23, 9, 30, 21};
    const auto plain = render_region(*model, r, student_opts(s, 64, 1, 1));
    CanvasFields fields;
    fields.seed = 9;
    const auto map = student_colour_map(*model, s, fields, 32);
    ASSERT_EQ(map.sizes(), at::IntArrayRef({3, 4}));
    model->set_student_colours({map});
    const auto direct = render_region(*model, r, student_opts(s, 64, 1, 1));
    EXPECT_TRUE(test::all_close(direct, apply_colour_map(map, plain.unsqueeze(0))[0], 1e-5,
                                1e-5));
    EXPECT_TRUE(
        test::all_close(render_region(*model, r, student_opts(s, 7, 2, 2)), direct, 1e-5, 1e-5));
    EXPECT_THROW(model->set_student_colours({map, map}), Error);  // one style, one map
}

// A student's pixel reads whole cells: it exists only where a level pixel is.
TEST(CoarseStudent, LevelsOfWholeCellsOnly) {
    const auto c = test::micro_generator_config();  // 4 px per cell
    EXPECT_THROW(CoarseStudentConfig::for_level(c, -1), Error);
    const auto s = CoarseStudentConfig::for_level(c, -4);
    EXPECT_EQ(s.cells, 4);
    EXPECT_EQ(s.latent_channels, c.local_latent_dim / 4);
    EXPECT_TRUE(s.validate().empty());
    auto bad = s;
    bad.latent_channels = 0;
    bad.dilations = {0};
    EXPECT_EQ(bad.validate().size(), 2u);
}

// fit-coarse --student writes the students beside the heads already fitted; Engine renders
// their levels; a file with a wrong or an extra student tensor is an error listing both.
TEST(CoarseStudent, SideFileKeepsTheHeadsAndLoadsStrictly) {
    const auto model = tiny_model_copy("student");
    FitCoarseRequest f;
    f.model = model;
    f.samples = 2;
    f.held_out = 1;
    f.side = 4;
    fit_coarse(f);  // the heads first
    f.student = true;
    f.student_samples = 2;
    f.student_side = 4;
    f.student_steps = 2;
    const auto fit = fit_coarse(f);
    ASSERT_EQ(fit.levels.size(), 2u);
    EXPECT_EQ(fit.levels[0].source, "student");
    EXPECT_EQ(fit.levels[1].steps, 2);
    {
        const Engine engine(model);
        const auto& s = engine.summary();
        EXPECT_EQ(s.coarse_heads.size(), 3u);
        ASSERT_EQ(s.coarse_students.size(), 2u);
        GenerateRequest r;
        r.seed = 3, r.x = -5, r.y = 2, r.width = 12, r.height = 8;
        r.coarse_student = true;
        for (int level : {-3, -4}) {
            r.level = level;
            EXPECT_EQ(engine.render_rgb(r).size(), size_t(3 * 12 * 8)) << level;
        }
        r.level = -2;
        EXPECT_THROW(engine.render_rgb(r), UsageError);
        r.level = -3;
        r.coarse_head = true;
        EXPECT_THROW(engine.render_rgb(r), UsageError);
        // A cyclic period of whole cells but not of whole -4 pixels: refused up front (the
        // server then serves the exact tile instead of a preview).
        r.coarse_head = false;
        r.level = -4;
        r.cyclic_width = 25 * 8;
        EXPECT_THROW(engine.render_rgb(r), UsageError);
        r.cyclic_width = 25 * 16;
        EXPECT_EQ(engine.render_rgb(r).size(), size_t(3 * 12 * 8));
    }
    auto file = read_safetensors(fit.path);
    file.tensors["student.m3.extra"] = torch::zeros({1});
    file.tensors["student.m4.stem.weight"] = torch::zeros({3, 2});
    write_safetensors(fit.path, file);
    try {
        const Engine engine(model);
        ADD_FAILURE() << "a broken side file loaded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("unexpected student.m3.extra"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("student.m4.stem.weight must be"), std::string::npos)
            << e.what();
    }
    std::filesystem::remove_all(std::filesystem::path(model).parent_path());
}

}  // namespace
}  // namespace igan
