// Evaluation metrics (docs/evaluation.md) on small synthetic images: SWD properties, closed-form Fréchet
// distances, KID, the InceptionV3 layout with random weights, ScaleInv resizing, seam scores,
// crop sampling, bootstrap spreads, and run_eval's rows and folder errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "common/test_util.h"
#include "core/error.h"
#include "igan/igan.h"
#include "core/threads.h"
#include "eval/bootstrap.h"
#include "eval/crops.h"
#include "eval/fid.h"
#include "eval/images.h"
#include "eval/inception.h"
#include "eval/scaleinv.h"
#include "eval/seam.h"
#include "eval/swd.h"
#include "io/png.h"
#include "model/config.h"
#include "model/generator.h"
#include "render/renderer.h"
#include "weights/model_file.h"

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
    // Most of the rect lies beyond this config's 32-px band, where the fade makes the rows'
    // texture fall off with height: the seam statistic wants a stationary texture.
    o.fields.fade_beyond_band = false;
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

TEST(Crops, PureFunctionOfSeedPhotoAndIndex) {
    torch::manual_seed(4);
    const auto image = torch::rand({3, 60, 90}) * 2 - 1;
    CropSampling s;
    s.size = 24;
    const auto photo = prepare_photo(image, s);
    EXPECT_EQ(photo.sizes(), torch::IntArrayRef({3, 36, 54}));  // short side ceil(24 * 1.5)
    const uint64_t key = photo_key("/some/folder/photo.jpg");
    EXPECT_EQ(key, photo_key("/elsewhere/photo.jpg"));
    EXPECT_NE(key, photo_key("/some/folder/other.jpg"));
    std::vector<torch::Tensor> forward;
    for (int64_t i = 0; i < 6; ++i) forward.push_back(sample_crop(photo, s, key, i));
    // Backwards, on one intra-op thread, and after other photos' crops: the very same pixels.
    IntraOpThreadsScope one_thread(1);
    sample_crop(prepare_photo(image.flip({1}), s), s, key + 1, 3);
    for (int64_t i = 5; i >= 0; --i) {
        const auto again = sample_crop(photo, s, key, i);
        EXPECT_EQ(again.sizes(), torch::IntArrayRef({3, 24, 24}));
        EXPECT_TRUE(torch::equal(again, forward[size_t(i)])) << "crop " << i;
    }
    EXPECT_FALSE(torch::equal(forward[0], forward[1]));
    s.seed = 1;
    EXPECT_FALSE(torch::equal(sample_crop(photo, s, key, 0), forward[0]));
}

TEST(Crops, AtScaleOneAWindowOfThePhotoOrItsMirror) {
    torch::manual_seed(5);
    const auto image = torch::rand({3, 24, 40});
    CropSampling s;
    s.size = 24;
    s.max_scale = 1.0;
    const auto photo = prepare_photo(image, s);
    EXPECT_TRUE(torch::equal(photo, image));
    int flipped = 0;
    for (int64_t i = 0; i < 16; ++i) {
        const auto crop = sample_crop(photo, s, 7, i);
        bool found = false;
        for (int64_t x = 0; x + 24 <= 40 && !found; ++x) {
            const auto window = image.narrow(2, x, 24);
            if (torch::equal(crop, window)) found = true;
            if (torch::equal(crop, window.flip({2}))) found = true, ++flipped;
        }
        EXPECT_TRUE(found) << "crop " << i;
    }
    EXPECT_GT(flipped, 0);
    EXPECT_LT(flipped, 16);
}

TEST(Bootstrap, DrawsAreDeterministicResamplesWithinStrata) {
    const Strata one(10, 0);
    const auto draws = bootstrap_draws(one, 5, 42);
    ASSERT_EQ(draws.size(), 6u);
    EXPECT_EQ(draws[0], Draw(10, 1));
    for (const auto& d : draws) EXPECT_EQ(std::accumulate(d.begin(), d.end(), 0), 10);
    EXPECT_NE(draws[1], draws[2]);
    EXPECT_EQ(bootstrap_draws(one, 5, 42), draws);
    EXPECT_NE(bootstrap_draws(one, 5, 43), draws);
    // Three photos of 4, 4 and 2 crops, interleaved: every draw keeps each photo's share.
    const Strata photos = {0, 1, 2, 0, 1, 2, 0, 1, 0, 1};
    for (const auto& d : bootstrap_draws(photos, 20, 7)) {
        std::map<int64_t, int> per_photo;
        for (size_t i = 0; i < d.size(); ++i) per_photo[photos[i]] += d[i];
        EXPECT_EQ(per_photo, (std::map<int64_t, int>{{0, 4}, {1, 4}, {2, 2}}));
    }
    EXPECT_TRUE(torch::equal(draw_indices(Draw{0, 2, 1}), torch::tensor({1, 1, 2}, torch::kLong)));
}

TEST(Bootstrap, SpreadIsZeroWhenResamplingCannotChangeTheSets) {
    // The difference of the means of two sets of scalars.
    auto mean_gap = [](const std::vector<double>& real, const std::vector<double>& fake) {
        return per_draw([&](const Draw& r, const Draw& f) {
            double a = 0, b = 0;
            for (size_t i = 0; i < real.size(); ++i) a += r[i] * real[i] / double(real.size());
            for (size_t i = 0; i < fake.size(); ++i) b += f[i] * fake[i] / double(fake.size());
            return a - b;
        });
    };
    const std::vector<double> same(8, 0.5), spread = {0, 1, 2, 3, 4, 5, 6, 7};
    const auto flat =
        bootstrap(mean_gap(same, std::vector<double>(5, 0.25)), Strata(8), Strata(5), 30, 1);
    EXPECT_DOUBLE_EQ(flat.value, 0.25);
    EXPECT_NEAR(flat.std, 0.0, 1e-12);  // round-off of sums in another order
    EXPECT_EQ(flat.draws, 30);
    const auto noisy = bootstrap(mean_gap(spread, same), Strata(8), Strata(8), 200, 1);
    EXPECT_DOUBLE_EQ(noisy.value, 3.0);
    // The standard error of a mean of 8 draws from {0..7}: sqrt(5.25 / 8) = 0.81.
    EXPECT_NEAR(noisy.std, 0.81, 0.15);
    EXPECT_EQ(bootstrap(mean_gap(spread, same), Strata(8), Strata(8), 0, 1).std, 0.0);
    // Strata of one sample each: nothing to resample.
    const auto fixed =
        bootstrap(mean_gap(spread, same), {0, 1, 2, 3, 4, 5, 6, 7}, Strata(8), 20, 1);
    EXPECT_NEAR(fixed.std, 0.0, 1e-12);
}

TEST(Swd, DrawsOfAllOnesEqualSwdAndSpreadIsZeroOnlyForRepeatedImages) {
    const auto a = textures(5, 32, 1), b = textures(3, 32, 2);
    const auto da = descriptors(a), db = descriptors(b);
    const auto direct = swd(da, db);
    const auto drawn =
        swd_draws(da, db, bootstrap_draws(Strata(5), 4, 1), bootstrap_draws(Strata(3), 4, 2), 3);
    ASSERT_EQ(drawn.size(), 5u);
    ASSERT_EQ(drawn[0].levels.size(), direct.levels.size());
    for (size_t l = 0; l < direct.levels.size(); ++l)  // float projections against double
        EXPECT_NEAR(drawn[0].levels[l], direct.levels[l], 1e-5 * direct.levels[l]);
    EXPECT_EQ(drawn[0].resolutions, direct.resolutions);
    EXPECT_NE(drawn[1].mean, drawn[2].mean);
    // On one thread: the same numbers.
    const auto again =
        swd_draws(da, db, bootstrap_draws(Strata(5), 4, 1), bootstrap_draws(Strata(3), 4, 2), 1);
    for (size_t t = 0; t < drawn.size(); ++t) EXPECT_EQ(again[t].mean, drawn[t].mean);
    // Sets of one repeated image: every draw is the same set.
    const std::vector<torch::Tensor> ra(4, a[0]), rb(6, b[0]);
    const auto dra = descriptors(ra), drb = descriptors(rb);
    const auto metric = [&](const std::vector<Draw>& x, const std::vector<Draw>& y) {
        std::vector<double> v;
        for (const auto& r : swd_draws(dra, drb, x, y)) v.push_back(r.mean);
        return v;
    };
    const auto flat = bootstrap(metric, Strata(4), Strata(6), 8, 3);
    EXPECT_GT(flat.value, 1.0);
    EXPECT_NEAR(flat.std, 0.0, 1e-9 * flat.value);
    const auto varied = bootstrap(
        [&](const std::vector<Draw>& x, const std::vector<Draw>& y) {
            std::vector<double> v;
            for (const auto& r : swd_draws(da, db, x, y)) v.push_back(r.mean);
            return v;
        },
        Strata(5), Strata(3), 8, 3);
    EXPECT_GT(varied.std, 1e-3 * varied.value);
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
    r.crops_per_image = 2;
    EXPECT_GT(nlohmann::json::parse(run_eval(r))["swd"].get<double>(), 0.0);
}

TEST_F(EvalFolders, CropsOfOneFolderScoreZeroAndTheFloorRowAppears) {
    const auto a = dir("a"), b = dir("b");
    for (int i = 0; i < 3; ++i) {
        png(a + "/" + std::to_string(i) + ".png", 48, 40, uint8_t(10 * i));
        png(b + "/" + std::to_string(i) + ".png", 44, 36, uint8_t(100 + 10 * i));
    }
    EvalRequest r;
    r.fake = a;
    r.real = a;
    r.floor = b;
    r.size = 24;
    r.crops_per_image = 4;
    r.bootstrap = 5;
    const auto same = nlohmann::json::parse(run_eval(r));
    EXPECT_EQ(same["n_real"].get<int64_t>(), 12);
    EXPECT_EQ(same["n_fake"].get<int64_t>(), 12);
    EXPECT_LT(same["swd"].get<double>(), 1e-9);
    EXPECT_GT(same["swd_std"].get<double>(), 0.0);  // the two sides are drawn independently
    EXPECT_LT(same["swd_ratio"].get<double>(), 1e-9);
    ASSERT_TRUE(same.contains("floor"));
    const auto& floor = same["floor"];
    EXPECT_EQ(floor["n"].get<int64_t>(), 12);
    EXPECT_GT(floor["swd"].get<double>(), 1.0);
    EXPECT_GT(floor["swd_std"].get<double>(), 0.0);
    // The same folder as fake and as floor: both rows sample it alike.
    r.fake = b;
    const auto other = nlohmann::json::parse(run_eval(r));
    EXPECT_EQ(other["swd"].get<double>(), other["floor"]["swd"].get<double>());
    EXPECT_EQ(other["swd"].get<double>(), floor["swd"].get<double>());
    EXPECT_DOUBLE_EQ(other["swd_ratio"].get<double>(), 1.0);
    // Another sample seed draws other crops.
    r.sample_seed = 1;
    EXPECT_NE(nlohmann::json::parse(run_eval(r))["swd"].get<double>(), other["swd"].get<double>());
}

TEST_F(EvalFolders, ModelModeReportsModelRandomAndFloorRows) {
    const auto real = dir("real"), train = dir("train");
    for (int i = 0; i < 2; ++i)
        png(real + "/" + std::to_string(i) + ".png", 64, 50, uint8_t(20 * i));
    for (int i = 0; i < 3; ++i)
        png(train + "/" + std::to_string(i) + ".png", 60, 52, uint8_t(30 + 20 * i));
    // A micro model written the way `igan init --seed 7` writes one.
    const auto config = (root_ / "micro.json").string();
    nlohmann::json cj = test::micro_train_config();
    std::ofstream(config) << cj.dump();
    InitRequest init;
    init.config = config;
    init.seed = 7;
    init.out = (root_ / "micro.safetensors").string();
    init_model(init);

    EvalRequest r;
    r.model = init.out;
    r.real = real;
    r.floor = train;
    r.crops_per_image = 2;
    r.n = 3;
    r.bootstrap = 3;
    r.random_seed = 7;
    const auto j = nlohmann::json::parse(run_eval(r));
    EXPECT_EQ(j["n_real"].get<int64_t>(), 4);
    EXPECT_EQ(j["n"].get<int64_t>(), 3);
    EXPECT_EQ(j["floor"]["n"].get<int64_t>(), 3);
    const auto& model = j["scales"][0];
    const auto& random = j["random"]["scales"][0];
    for (const auto* row : {&model, &random})
        for (const char* key : {"swd", "swd_std", "swd_ratio", "swd_levels"})
            EXPECT_TRUE(row->contains(key)) << key;
    // The random row is the model `igan init --seed 7` writes: here, the model itself.
    EXPECT_EQ(random["swd"].get<double>(), model["swd"].get<double>());
    EXPECT_EQ(j["swd"].get<double>(), model["swd"].get<double>());
    EXPECT_DOUBLE_EQ(model["swd_ratio"].get<double>(),
                     model["swd"].get<double>() / j["floor"]["swd"].get<double>());
}

}  // namespace
}  // namespace igan
