// Evaluation metrics (SPEC §6) on small synthetic images: SWD properties, closed-form Fréchet
// distances, KID, the InceptionV3 layout with random weights, ScaleInv resizing, seam scores and
// the folder errors of run_eval.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "common/test_util.h"
#include "core/error.h"
#include "eval/fid.h"
#include "eval/images.h"
#include "eval/inception.h"
#include "eval/scaleinv.h"
#include "eval/seam.h"
#include "eval/swd.h"
#include "io/png.h"
#include "model/generator.h"
#include "render/renderer.h"

namespace igan {
namespace {

namespace F = torch::nn::functional;

// Smooth coloured textures: low-resolution noise upsampled, plus a random oriented wave.
std::vector<torch::Tensor> textures(int64_t count, int64_t size, uint64_t seed) {
    torch::manual_seed(seed);
    std::vector<torch::Tensor> out;
    const auto ys = torch::arange(size).to(torch::kFloat).view({1, size, 1});
    const auto xs = torch::arange(size).to(torch::kFloat).view({1, 1, size});
    for (int64_t i = 0; i < count; ++i) {
        auto low = torch::randn({1, 3, 6, 6});
        auto img = F::interpolate(low, F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{size, size})
                                           .mode(torch::kBicubic)
                                           .align_corners(false))[0] *
                   0.4;
        const auto f = torch::rand({2}) * 0.5 + 0.1;
        img = img + 0.3 * torch::sin(f[0] * xs + f[1] * ys + float(i));
        out.push_back(img.clamp(-1, 1));
    }
    return out;
}

SwdDescriptors descriptors(const std::vector<torch::Tensor>& images) {
    SwdDescriptors d(SwdConfig{}, images[0].size(1), images[0].size(2));
    for (const auto& img : images) d.add(img);
    return d;
}

double swd_of(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
    return swd(descriptors(a), descriptors(b)).mean;
}

torch::Tensor blur3(const torch::Tensor& img) {
    auto k = torch::tensor({1.f, 2.f, 1.f}) / 4;
    auto k2 = torch::outer(k, k).view({1, 1, 3, 3}).expand({3, 1, 3, 3}).contiguous();
    auto padded = F::pad(img.unsqueeze(0), F::PadFuncOptions({1, 1, 1, 1}).mode(torch::kReflect));
    return F::conv2d(padded, k2, F::Conv2dFuncOptions().groups(3))[0];
}

TEST(Swd, LevelSizesFollowTheProGanRule) {
    const SwdConfig c;
    const auto s128 = swd_level_sizes(c, 128, 128);
    ASSERT_EQ(s128.size(), 4u);
    EXPECT_EQ(s128.back().first, 16);
    EXPECT_EQ(swd_level_sizes(c, 101, 101).size(), 3u);    // 101, 51, 26
    EXPECT_EQ(swd_level_sizes(c, 1024, 1024).size(), 4u);  // capped
    EXPECT_TRUE(swd_level_sizes(c, 15, 64).empty());
    EXPECT_THROW(SwdDescriptors(c, 12, 12), Error);
}

TEST(Swd, LaplacianPyramidKeepsConstantsAndSumsBack) {
    const auto flat = torch::full({1, 3, 40, 36}, 0.25f);
    const auto p = laplacian_pyramid(flat, 3);
    ASSERT_EQ(p.size(), 3u);
    EXPECT_LT(p[0].abs().max().item<double>(), 1e-6);
    EXPECT_LT(p[1].abs().max().item<double>(), 1e-6);
    EXPECT_EQ(p[2].size(2), 10);
    EXPECT_EQ(p[2].size(3), 9);
    EXPECT_TRUE(test::all_close(p[2], torch::full({1, 3, 10, 9}, 0.25f), 1e-6));
}

TEST(Swd, IdenticalSetsScoreZero) {
    const auto a = textures(6, 64, 1);
    std::vector<torch::Tensor> copy;
    for (const auto& t : a) copy.push_back(t.clone());
    EXPECT_LT(swd_of(a, copy), 1e-9);
}

TEST(Swd, NoiseScoresFarAboveSlightBlur) {
    const auto a = textures(6, 64, 2);
    std::vector<torch::Tensor> blurred, noise;
    torch::manual_seed(7);
    for (const auto& t : a) {
        blurred.push_back(blur3(t));
        noise.push_back(torch::rand_like(t) * 2 - 1);
    }
    const double d_blur = swd_of(a, blurred), d_noise = swd_of(a, noise);
    EXPECT_GT(d_blur, 0);
    EXPECT_GT(d_noise, 5 * d_blur) << "blur " << d_blur << " noise " << d_noise;
}

TEST(Swd, IndependentOfImageOrder) {
    const auto a = textures(5, 48, 3), b = textures(5, 48, 4);
    auto a_rev = a, b_shuf = b;
    std::reverse(a_rev.begin(), a_rev.end());
    std::swap(b_shuf[0], b_shuf[3]);
    std::swap(b_shuf[1], b_shuf[4]);
    const auto r1 = swd(descriptors(a), descriptors(b)),
               r2 = swd(descriptors(a_rev), descriptors(b_shuf));
    ASSERT_EQ(r1.levels.size(), r2.levels.size());
    for (size_t l = 0; l < r1.levels.size(); ++l)
        EXPECT_NEAR(r1.levels[l], r2.levels[l], 1e-9 * r1.levels[l]);
    EXPECT_GT(r1.mean, 0);
    EXPECT_NEAR(swd(descriptors(b), descriptors(a)).mean, r1.mean, 1e-9 * r1.mean);  // symmetric
}

TEST(Swd, ExactOneDimensionalDistanceForUnequalCounts) {
    // W1(uniform{0, 1}, uniform{0, 0.5, 1}) = 1/6; in 1-D every unit direction is +-1.
    const auto a = torch::tensor({0.0, 1.0}).view({2, 1});
    const auto b = torch::tensor({0.0, 0.5, 1.0}).view({3, 1});
    EXPECT_NEAR(sliced_wasserstein(a, b, SwdConfig{}), 1.0 / 6.0, 1e-12);
    EXPECT_NEAR(sliced_wasserstein(a, a + 0.25, SwdConfig{}), 0.25, 1e-12);
}

// Fréchet distance of N(m1, S1), N(m2, S2) with commuting covariances S = Q diag Q^T.
double commuting_closed_form(const torch::Tensor& m1, const torch::Tensor& d1,
                             const torch::Tensor& m2, const torch::Tensor& d2) {
    return ((m1 - m2).pow(2).sum() + (d1.sqrt() - d2.sqrt()).pow(2).sum()).item<double>();
}

TEST(Fid, ClosedFormForGaussianStatistics) {
    torch::manual_seed(11);
    const int64_t d = 6;
    const auto q = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kDouble)));
    const auto d1 = torch::rand({d}, torch::kDouble) * 2 + 0.1;
    const auto d2 = torch::rand({d}, torch::kDouble) * 3 + 0.05;
    GaussianStats a{torch::randn({d}, torch::kDouble), q.matmul(torch::diag(d1)).matmul(q.t()), 0};
    GaussianStats b{torch::randn({d}, torch::kDouble), q.matmul(torch::diag(d2)).matmul(q.t()), 0};
    EXPECT_NEAR(frechet_distance(a, b), commuting_closed_form(a.mean, d1, b.mean, d2), 1e-10);
    EXPECT_NEAR(frechet_distance(a, a), 0.0, 1e-10);

    // Non-commuting covariances: tr((S1^1/2 S2 S1^1/2)^1/2) = sum sqrt(eig(S1 S2)).
    const auto r1 = torch::randn({d, d}, torch::kDouble), r2 = torch::randn({d, d}, torch::kDouble);
    const auto s1 = r1.matmul(r1.t()) + 0.1 * torch::eye(d, torch::kDouble);
    const auto s2 = r2.matmul(r2.t()) + 0.1 * torch::eye(d, torch::kDouble);
    const double tr_sqrt =
        torch::real(torch::linalg_eigvals(s1.matmul(s2))).sqrt().sum().item<double>();
    const auto m = torch::zeros({d}, torch::kDouble);
    const double expected = (s1.trace() + s2.trace()).item<double>() - 2 * tr_sqrt;
    EXPECT_NEAR(frechet_distance({m, s1, 0}, {m, s2, 0}), expected, 1e-9 * expected);
    // sqrtm_psd squares back.
    EXPECT_TRUE(test::all_close(sqrtm_psd(s1).matmul(sqrtm_psd(s1)), s1, 1e-10));
}

TEST(Fid, SampledGaussiansApproachTheClosedForm) {
    torch::manual_seed(12);
    const int64_t d = 4, n = 40000;
    const auto m1 = torch::tensor({0.0, 1.0, -0.5, 2.0}, torch::kDouble);
    const auto m2 = torch::tensor({0.5, 1.0, 0.0, 1.0}, torch::kDouble);
    const auto v1 = torch::tensor({1.0, 0.5, 2.0, 0.25}, torch::kDouble);
    const auto v2 = torch::tensor({2.0, 0.5, 1.0, 1.0}, torch::kDouble);
    const auto x = torch::randn({n, d}, torch::kDouble) * v1.sqrt() + m1;
    const auto y = torch::randn({n, d}, torch::kDouble) * v2.sqrt() + m2;
    const double expected = commuting_closed_form(m1, v1, m2, v2);
    const double fid = frechet_distance(gaussian_stats(x.to(torch::kFloat)), gaussian_stats(y));
    EXPECT_NEAR(fid, expected, 0.03 * expected) << "expected " << expected;
    EXPECT_THROW(gaussian_stats(torch::zeros({1, d})), Error);
}

TEST(Kid, NearZeroForOneDistributionPositiveForShift) {
    torch::manual_seed(13);
    const auto a = torch::randn({400, 16}), b = torch::randn({400, 16});
    const auto same = kernel_inception_distance(a, b, 20, 200);
    const auto shifted = kernel_inception_distance(a, b + 0.5, 20, 200);
    EXPECT_EQ(same.subset_size, 200);
    EXPECT_LT(std::abs(same.mean), 3 * same.std + 1e-3);
    EXPECT_GT(shifted.mean, 10 * std::abs(same.mean) + 10 * same.std);
    EXPECT_THROW(kernel_inception_distance(a.narrow(0, 0, 1), b), Error);
}

TEST(Inception, RandomWeightsGivePoolFeaturesDeterministically) {
    torch::manual_seed(14);
    InceptionV3 net;
    net->eval();
    int64_t params = 0;
    for (const auto& p : net->parameters()) params += p.numel();
    EXPECT_EQ(params, 21785568);  // torchvision inception_v3 (27161264) - AuxLogits - fc
    const auto sd = net->named_parameters();
    ASSERT_TRUE(sd.contains("Mixed_7c.branch3x3dbl_3b.conv.weight"));
    EXPECT_EQ(sd["Mixed_7c.branch3x3dbl_3b.conv.weight"].sizes(),
              torch::IntArrayRef({384, 384, 3, 1}));
    EXPECT_EQ(sd["Conv2d_1a_3x3.conv.weight"].sizes(), torch::IntArrayRef({32, 3, 3, 3}));
    EXPECT_TRUE(net->named_buffers().contains("Mixed_6e.branch_pool.bn.running_var"));

    torch::NoGradGuard no_grad;
    const auto x = torch::rand({2, 3, 40, 40}) * 2 - 1;
    const auto f1 = net->forward(x, 75), f2 = net->forward(x, 75);
    ASSERT_EQ(f1.sizes(), torch::IntArrayRef({2, InceptionV3Impl::kFeatures}));
    EXPECT_TRUE(torch::equal(f1, f2));
    EXPECT_TRUE(torch::isfinite(f1).all().item<bool>());
    EXPECT_GE(f1.min().item<double>(), 0.0);  // after ReLU and average pooling
    EXPECT_GT((f1[0] - f1[1]).abs().max().item<double>(), 0.0);
}

TEST(Inception, LoadsStrictlyAndListsEveryProblem) {
    torch::manual_seed(15);
    InceptionV3 net;
    net->eval();
    std::map<std::string, torch::Tensor> state;
    for (const auto& p : net->named_parameters()) state[p.key()] = p.value().detach();
    for (const auto& b : net->named_buffers())
        if (b.key().find("num_batches_tracked") == std::string::npos)  // optional: leave out
            state[b.key()] = b.value().detach();
    state["fc.weight"] = torch::zeros({1008, 2048});  // classifier head: skipped
    state["fc.bias"] = torch::zeros({1008});
    auto loaded = inception_from_tensors(state, "good");
    torch::NoGradGuard no_grad;
    const auto x = torch::rand({1, 3, 75, 75}) * 2 - 1;
    EXPECT_TRUE(test::all_close(loaded->forward(x, 75), net->forward(x, 75), 1e-6));

    state.erase("Mixed_5b.branch1x1.conv.weight");
    state["Mixed_7a.branch3x3_2.bn.bias"] = torch::zeros({3});
    state["AuxLogits.fc.weight"] = torch::zeros({1000, 768});
    try {
        inception_from_tensors(state, "broken.safetensors");
        ADD_FAILURE() << "expected igan::Error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_EQ(msg.rfind("broken.safetensors: ", 0), 0u) << msg;
        EXPECT_NE(msg.find("missing Mixed_5b.branch1x1.conv.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("wrong shape for Mixed_7a.branch3x3_2.bn.bias"), std::string::npos);
        EXPECT_NE(msg.find("unexpected AuxLogits.fc.weight"), std::string::npos);
        EXPECT_NE(msg.find("3 problems"), std::string::npos);
    }
    EXPECT_THROW(load_inception("/nonexistent/inception.safetensors"), Error);
}

TEST(ScaleInv, BilinearResizeOfSyntheticImage) {
    const int64_t s = 8, k = 4, big = s * k;
    const auto ys = torch::arange(big).to(torch::kFloat).view({1, big, 1});
    const auto xs = torch::arange(big).to(torch::kFloat).view({1, 1, big});
    const auto offsets = torch::tensor({0.f, 0.1f, -0.2f}).view({3, 1, 1});
    // A linear ramp: bilinear interpolation is exact, at source pixel (i + 0.5) k - 0.5.
    const auto ramp = 0.01f * xs + 0.02f * ys + offsets;
    const auto centres = torch::arange(s).to(torch::kFloat) * k + (k - 1) / 2.0f;
    const auto expected =
        0.01f * centres.view({1, 1, s}) + 0.02f * centres.view({1, s, 1}) + offsets;
    EXPECT_TRUE(test::all_close(resize_bilinear(ramp, s, s), expected, 1e-5));
    // No antialiasing: 1-px stripes average to exactly 0 (k = 4 samples pixels 4i+1 and 4i+2);
    // an antialiased resize would too, but 4x4 blocks must come out as their own values.
    const auto stripes = (xs.remainder(2) * 2 - 1).expand({3, big, big});
    EXPECT_LT(resize_bilinear(stripes, s, s).abs().max().item<double>(), 1e-6);
    const auto blocks = torch::rand({3, s, s});
    const auto blocky = blocks.repeat_interleave(k, 1).repeat_interleave(k, 2);
    EXPECT_TRUE(test::all_close(resize_bilinear(blocky, s, s), blocks, 1e-6));
    // Only pixels 4i+1 and 4i+2 count: changing the others leaves the result unchanged.
    auto edges = blocky.clone();
    edges.slice(2, 0, big, k).fill_(5.0);
    EXPECT_TRUE(test::all_close(resize_bilinear(edges, s, s), blocks, 1e-6));

    const Rect r = scaleinv_rect(101, 2);
    EXPECT_EQ(r.x, 0);
    EXPECT_EQ(r.y, -101);
    EXPECT_EQ(r.w, 202);
    EXPECT_EQ(r.h, 202);
}

TEST(ScaleInv, CentreCropResizesPhotos) {
    auto photo = torch::zeros({3, 60, 100});
    photo.narrow(2, 20, 60).fill_(0.5);  // the centred 60x60 square
    const auto out = center_crop_resize(photo, 30);
    ASSERT_EQ(out.sizes(), torch::IntArrayRef({3, 30, 30}));
    EXPECT_TRUE(test::all_close(out, torch::full({3, 30, 30}, 0.5f), 1e-6));
    EXPECT_TRUE(test::all_close(quantize_levels(torch::tensor({0.001f, 2.f})),
                                torch::tensor({128 / 127.5f - 1, 1.f}), 1e-6));
}

TEST(Seam, GradientRatioOfSyntheticImages) {
    const int64_t n = 48, tile = 16;
    const auto xs = torch::arange(n).to(torch::kFloat).view({1, 1, n});
    const auto ys = torch::arange(n).to(torch::kFloat).view({1, n, 1});
    const auto ramp = (0.01f * xs + 0.01f * ys).expand({3, n, n}).contiguous();
    EXPECT_NEAR(boundary_gradients(ramp, tile).ratio, 1.0, 1e-5);
    // A jump at every tile boundary.
    const auto jumps = ramp + 0.05f * (xs / tile).floor() + 0.05f * (ys / tile).floor();
    EXPECT_GT(boundary_gradients(jumps, tile).ratio, 3.0);
    EXPECT_THROW(boundary_gradients(ramp.narrow(1, 0, 8).narrow(2, 0, 8), tile), Error);
}

TEST(Seam, TiledRenderIsSeamlessIndependentTilesAreNot) {
    auto model = test::random_patch_model(test::micro_generator_config(32), 0.0);
    PatchModel& m = *model;
    RenderOptions o;
    o.fields.seed = 5;
    const int64_t up = CanvasGeometry(m.config()).upscale();
    const Rect rect{0, -8 * up, 64, 64};
    const auto s = seam_score(m, rect, 16, o);
    EXPECT_LT(s.max_abs_diff, 1e-4);
    EXPECT_GT(s.tiled.ratio, 0.8);
    EXPECT_LT(s.tiled.ratio, 1.25);
    EXPECT_GT(s.naive.ratio, 1.5 * s.tiled.ratio)
        << "tiled " << s.tiled.ratio << " naive " << s.naive.ratio;
    const auto sample = render_scaleinv(m, o, 32, 2);
    EXPECT_EQ(sample.sizes(), torch::IntArrayRef({3, 32, 32}));
}

// Folders of tiny PNGs, some deliberately broken.
class EvalFolders : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = std::filesystem::temp_directory_path() /
                ("igan_test_eval_" + std::to_string(::getpid()));
        std::filesystem::create_directories(root_);
    }
    void TearDown() override { std::filesystem::remove_all(root_); }
    std::string dir(const std::string& name) {
        const auto p = root_ / name;
        std::filesystem::create_directories(p);
        return p.string();
    }
    static void png(const std::string& path, int64_t w, int64_t h, uint8_t value) {
        PngWriter out(path, w, h, {});
        std::vector<uint8_t> rows(size_t(3 * w * h));
        for (size_t i = 0; i < rows.size(); ++i) rows[i] = uint8_t(value + (i * 7) % 50);
        out.write_rows(rows.data(), h);
        out.finish();
    }
    std::filesystem::path root_;
};

TEST_F(EvalFolders, SwdOfFoldersAndClearErrors) {
    const auto a = dir("a"), b = dir("b"), empty = dir("empty"), mixed = dir("mixed"),
               bad = dir("bad");
    for (int i = 0; i < 3; ++i) {
        png(a + "/" + std::to_string(i) + ".png", 32, 32, uint8_t(10 * i));
        png(b + "/" + std::to_string(i) + ".png", 32, 32, uint8_t(100 + 10 * i));
    }
    png(mixed + "/0.png", 32, 32, 0);
    png(mixed + "/1.png", 40, 32, 0);
    std::ofstream(bad + "/0.png") << "not a png";
    std::ofstream(empty + "/notes.txt") << "no images here";

    EvalRequest r;
    r.fake = a;
    r.real = a;
    const auto same = nlohmann::json::parse(run_eval(r));
    EXPECT_LT(same["swd"].get<double>(), 1e-9);
    r.fake = b;
    EXPECT_GT(nlohmann::json::parse(run_eval(r))["swd"].get<double>(), 0.0);

    auto expect_error = [&](const std::string& fake, const std::string& real,
                            const std::string& needle) {
        EvalRequest q;
        q.fake = fake;
        q.real = real;
        try {
            run_eval(q);
            ADD_FAILURE() << "expected an error for " << fake;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_error(empty, a, "no images");
    expect_error(a, root_.string() + "/missing", "no such folder");
    expect_error(mixed, a, "same size");
    expect_error(bad, a, "0.png");
    EXPECT_THROW(run_eval(EvalRequest{}), UsageError);
    // --size resolves mixed sizes.
    r.fake = mixed;
    r.size = 24;
    EXPECT_GT(nlohmann::json::parse(run_eval(r))["swd"].get<double>(), 0.0);
}

}  // namespace
}  // namespace igan
