// D's input augmentation: differentiable, the same for reals and fakes, labels follow vertical
// shifts, ADA's p follows the overfitting signal, and resuming still equals a straight run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/test_util.h"
#include "model/state.h"
#include "train/augment.h"
#include "train/trainer.h"

namespace igan {
namespace {

namespace fs = std::filesystem;

at::Generator gen_of(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

AugmentBatch random_batch(int64_t n, int64_t size, uint64_t seed) {
    auto g = gen_of(seed);
    return {torch::rand({n, 3, size, size}, g) * 2 - 1, torch::rand({n, 3}, g) * 2 - 1};
}

TEST(Augment, GradientReachesTheInputAndMatchesFiniteDifferences) {
    for (auto mode : {AugmentMode::kDiffAug, AugmentMode::kAda}) {
        auto in = random_batch(4, 16, 1);
        auto g = gen_of(2);
        const auto params = draw_augment_params(mode, 1.0, 16, 4, g);
        const auto weights = torch::rand({4, 3, 16, 16}, gen_of(3));
        auto x = in.images.clone().to(torch::kFloat64).requires_grad_(true);
        auto loss = [&](const torch::Tensor& images) {
            return (apply_augment({images, in.labels}, params, 10).images * weights).sum();
        };
        const auto grad = torch::autograd::grad({loss(x)}, {x})[0];
        ASSERT_TRUE(grad.defined());
        EXPECT_GT(grad.abs().sum().item<double>(), 0) << augment_mode_name(mode);
        // Central differences at a few pixels (double precision: the ops are smooth there).
        torch::NoGradGuard no_grad;
        for (int64_t k : {5, 300, 1500, 3000}) {
            auto xp = x.detach().clone(), xm = x.detach().clone();
            xp.view(-1)[k] += 1e-6;
            xm.view(-1)[k] -= 1e-6;
            const double fd = (loss(xp) - loss(xm)).item<double>() / 2e-6;
            EXPECT_NEAR(grad.view(-1)[k].item<double>(), fd, 1e-4) << augment_mode_name(mode) << " " << k;
        }
    }
}

// Reals and fakes are augmented by one function whose draws depend only on the generator: the
// statistics of the transforms are the same whichever stream draws them.
TEST(Augment, RealAndFakeDrawsShareOneDistribution) {
    const int64_t n = 4096;
    for (auto mode : {AugmentMode::kDiffAug, AugmentMode::kAda}) {
        auto ga = gen_of(11), gb = gen_of(12);
        const auto a = draw_augment_params(mode, 0.5, 32, n, ga);
        const auto b = draw_augment_params(mode, 0.5, 32, n, gb);
        const double tol = 4.0 / std::sqrt(double(n));  // ~4 standard errors of unit-scale draws
        auto near = [&](const torch::Tensor& x, const torch::Tensor& y, const char* what) {
            EXPECT_NEAR(x.to(torch::kFloat64).mean().item<double>(),
                        y.to(torch::kFloat64).mean().item<double>(), tol)
                << augment_mode_name(mode) << " " << what;
            EXPECT_NEAR(x.to(torch::kFloat64).std().item<double>(),
                        y.to(torch::kFloat64).std().item<double>(), tol)
                << augment_mode_name(mode) << " " << what;
        };
        near(a.flip, b.flip, "flip");
        near(a.shift / 4, b.shift / 4, "shift");
        near(a.scale, b.scale, "scale");
        near(a.brightness, b.brightness, "brightness");
        near(a.contrast, b.contrast, "contrast");
        near(a.saturation.clamp_max(4), b.saturation.clamp_max(4), "saturation");
        // And differ draw by draw.
        EXPECT_FALSE(torch::equal(a.brightness, b.brightness));
    }
    // ADA at p = 0 is the identity; at p = 0.5 about half the samples are shifted.
    auto g = gen_of(13);
    const auto off = draw_augment_params(AugmentMode::kAda, 0.0, 32, n, g);
    const auto in = random_batch(8, 32, 4);
    EXPECT_TRUE(torch::equal(apply_augment(in, off.slice(0, 8), 10).images, in.images));
    auto g2 = gen_of(14);
    const auto half = draw_augment_params(AugmentMode::kAda, 0.5, 32, n, g2);
    const double moved = (half.shift.abs().sum(1) > 0).to(torch::kFloat64).mean().item<double>();
    EXPECT_NEAR(moved, 0.5 * (1 - 1.0 / 64), 0.05);  // a shift of (0, 0) is drawn 1 in 64 times
}

TEST(Augment, VerticalShiftMovesContentAndLabelTogether) {
    // A horizontal stripe image: row r has value r. Shifting down by 2 moves rows and the label.
    const int64_t size = 16;
    auto img = torch::arange(size, torch::kFloat32).view({1, 1, size, 1}).expand({1, 3, size, size});
    AugmentParams a;
    a.flip = torch::zeros({1}, torch::kBool);
    a.shift = torch::tensor({{0.0f, 2.0f}});
    a.scale = torch::ones({1});
    a.brightness = torch::zeros({1});
    a.contrast = torch::ones({1});
    a.saturation = torch::ones({1});
    a.any_geometric = true;  // colour off: exact values
    const auto out = apply_augment({img.contiguous(), torch::zeros({1, 1})}, a, 8.0);
    // Content at output row 10 came from input row 8; reflection fills the top.
    EXPECT_FLOAT_EQ(out.images[0][0][10][3].item<float>(), 8.f);
    EXPECT_FLOAT_EQ(out.images[0][1][5][0].item<float>(), 3.f);
    // The patch now shows content from 2 px higher: label -2 * 2 / span.
    EXPECT_FLOAT_EQ(out.labels[0][0].item<float>(), -0.5f);
}

TEST(Augment, AdaProbabilityFollowsTheOverfittingSignal) {
    AdaOptions o;
    o.kimg = 1;  // fast, for the test
    AdaState s;
    auto identity = [](double sum, double count) { return std::make_pair(sum, count); };
    // D sure of every real: r_t = 1 > 0.6, p rises.
    for (int64_t step = 0; step < 40; ++step) {
        ada_accumulate(s, torch::full({16, 1}, 3.0));
        ada_maybe_update(s, o, step, 16, identity);
    }
    EXPECT_NEAR(s.rt, 1.0, 1e-12);
    EXPECT_NEAR(s.p, 40 * 16 / 1000.0, 1e-9);
    // No overfitting (signs balanced): p falls back to 0 and stays there.
    auto g = gen_of(21);
    for (int64_t step = 40; step < 200; ++step) {
        ada_accumulate(s, torch::randn({16, 1}, g));
        ada_maybe_update(s, o, step, 16, identity);
    }
    EXPECT_LT(std::abs(s.rt), 0.6);
    EXPECT_EQ(s.p, 0.0);
}

TEST(Augment, ResumeEqualsStraightRunWithAda) {
    const auto data = test::make_train_dataset("augment_resume");
    const auto ckpt = (fs::temp_directory_path() /
                       ("igan_augment_resume_ckpt_" + std::to_string(::getpid())))
                          .string();
    auto options = test::micro_train_options(data, 4);
    options.augment = AugmentMode::kAda;
    options.augment_p = 0.5;
    options.ada.interval = 2;
    options.ada.kimg = 0.1;  // p moves within a few steps
    Trainer straight(options);
    for (int i = 0; i < 5; ++i) straight.step();
    {
        Trainer first(options);
        for (int i = 0; i < 3; ++i) first.step();  // mid-interval: the sign sums must persist
        first.save_checkpoint(ckpt);
    }
    Trainer resumed(options);
    resumed.load_checkpoint(ckpt);
    for (int i = 0; i < 2; ++i) resumed.step();
    EXPECT_NE(straight.ada_state().p, 0.5);
    EXPECT_DOUBLE_EQ(straight.ada_state().p, resumed.ada_state().p);
    const auto a = state_dict(*straight.generator()), b = state_dict(*resumed.generator());
    for (const auto& [k, t] : a) EXPECT_TRUE(test::all_close(t, b.at(k), 1e-6)) << k;
    const auto da = state_dict(*straight.discriminator()), db = state_dict(*resumed.discriminator());
    for (const auto& [k, t] : da) EXPECT_TRUE(test::all_close(t, db.at(k), 1e-6)) << k;
    EXPECT_EQ(checkpoint_augment_mode(ckpt), "ada");
    fs::remove_all(ckpt);
}

// Augmentation changes what D sees, so the trajectory differs from the plain one; G still learns.
TEST(Augment, TrainingWithDiffAugmentChangesTheTrajectory) {
    const auto data = test::make_train_dataset("augment_diff");
    auto plain = test::micro_train_options(data, 4);
    auto augmented = plain;
    augmented.augment = AugmentMode::kDiffAug;
    Trainer a(plain), b(augmented);
    for (int i = 0; i < 2; ++i) a.step(), b.step();
    EXPECT_TRUE(std::isfinite(b.last_stats().g_loss));
    EXPECT_FALSE(test::all_close(state_dict(*a.generator()).at("texture_synthesizer.convs.0.conv.weight"),
                                 state_dict(*b.generator()).at("texture_synthesizer.convs.0.conv.weight"),
                                 1e-7));
}

}  // namespace
}  // namespace igan
