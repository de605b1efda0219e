// Projected-GAN discriminator (train/projected_discriminator.h) inside the trainer: frozen parts
// stay frozen, the heads and G learn through it, resume equals a straight run, and a checkpoint
// of the other discriminator (or other features) is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "common/test_util.h"
#include "core/error.h"
#include "model/state.h"
#include "train/trainer.h"

namespace igan {
namespace {

namespace fs = std::filesystem;

using Weights = std::map<std::string, torch::Tensor>;

Weights snapshot(const torch::nn::Module& m) {
    Weights w;
    for (const auto& [k, t] : state_dict(m)) w[k] = t.clone();
    return w;
}

// Random feature weights (no file); small mixing and heads.
TrainOptions projected_options(const std::string& data) {
    auto o = test::micro_train_options(data, 4);
    o.discriminator = DiscriminatorKind::kProjected;
    torch::manual_seed(11);
    o.features = MobileNetV2Features();  // frozen on construction
    o.features->eval();
    o.projected.min_input = 2 * o.model.generator.patch_size();  // upsampled x2
    o.projected.mix_channels = {8, 8, 16, 16};
    o.projected.head_channels = 8;
    return o;
}

TEST(Projected, FrozenPartsStayHeadsAndGeneratorLearn) {
    auto o = projected_options(test::make_train_dataset("projected_frozen"));
    Trainer t(o);  // r1 = 10: R1's double backward runs through the feature network too
    auto& d = *t.projected_discriminator();
    const auto features = snapshot(*d.features), before = snapshot(d), g = snapshot(*t.generator());
    for (int i = 0; i < 3; ++i) {
        t.step();
        const auto& s = t.last_stats();
        EXPECT_TRUE(std::isfinite(s.d_loss) && std::isfinite(s.g_loss) && std::isfinite(s.ac_real));
    }
    EXPECT_TRUE(t.last_stats().did_r1);  // step 2 (d_reg_every 2)
    for (const auto& [k, v] : state_dict(*d.features)) EXPECT_TRUE(torch::equal(v, features.at(k))) << k;
    int64_t heads_changed = 0, mixing = 0;
    for (const auto& [k, v] : state_dict(d)) {
        if (k.rfind("channel_mix", 0) == 0 || k.rfind("scale_mix", 0) == 0) {
            ++mixing;
            EXPECT_TRUE(torch::equal(v, before.at(k))) << k;
        } else {
            heads_changed += !torch::equal(v, before.at(k));
        }
    }
    EXPECT_EQ(mixing, 7);
    EXPECT_GT(heads_changed, 0);
    // Only the heads are parameters (what the optimiser sees); the feature network is not in D.
    for (const auto& p : d.named_parameters())
        EXPECT_TRUE(p.key().rfind("heads.", 0) == 0 || p.key().rfind("coord_head.", 0) == 0) << p.key();
    EXPECT_EQ(state_dict(d).count("features.stem.weight"), 0u);
    const auto key = "texture_synthesizer.convs.0.conv.weight";
    EXPECT_FALSE(torch::equal(g.at(key), state_dict(*t.generator()).at(key)));
}

TEST(Projected, GradientReachesGeneratorThroughD) {
    auto o = projected_options(test::make_train_dataset("projected_grad"));
    ProjectedDiscriminatorConfig c = o.projected;
    ProjectedDiscriminator d(c, o.features, 3);
    const int64_t p = o.model.generator.patch_size();
    auto image = torch::randn({2, 3, p, p}).requires_grad_(true);
    const auto out = d->forward(image);
    EXPECT_EQ(out.d_patch.sizes(), (std::vector<int64_t>{2, 1}));
    EXPECT_EQ(out.ac_coords_pred.sizes(), (std::vector<int64_t>{2, 3}));
    (out.d_patch.sum() + out.ac_coords_pred.select(1, 0).sum()).backward();
    ASSERT_TRUE(image.grad().defined());
    EXPECT_GT(image.grad().abs().sum().item<double>(), 0);
    for (const auto& p : o.features->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Projected, ResumeEqualsStraightRun) {
    const auto data = test::make_train_dataset("projected_resume");
    const auto ckpt = (fs::temp_directory_path() /
                       ("igan_projected_resume_ckpt_" + std::to_string(::getpid())))
                          .string();
    auto o = projected_options(data);
    o.r1 = 0;
    o.augment = AugmentMode::kDiffAug;
    o.features_sha256 = "f00d";
    Trainer straight(o);
    for (int i = 0; i < 4; ++i) straight.step();
    {
        Trainer first(o);
        for (int i = 0; i < 2; ++i) first.step();
        first.save_checkpoint(ckpt);
    }
    EXPECT_EQ(checkpoint_discriminator_kind(ckpt), "projected");
    Trainer resumed(o);
    resumed.load_checkpoint(ckpt);
    for (int i = 0; i < 2; ++i) resumed.step();
    const auto ga = state_dict(*straight.generator()), gb = state_dict(*resumed.generator());
    for (const auto& [k, t] : ga) EXPECT_TRUE(test::all_close(t, gb.at(k), 1e-6)) << k;
    const auto da = state_dict(*straight.projected_discriminator());
    const auto db = state_dict(*resumed.projected_discriminator());
    for (const auto& [k, t] : da) EXPECT_TRUE(test::all_close(t, db.at(k), 1e-6)) << k;
    fs::remove_all(ckpt);
}

void expect_error_containing(const std::function<void()>& f, const std::string& text) {
    try {
        f();
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
}

TEST(Projected, OtherDiscriminatorOrFeaturesAreRefusedOnResume) {
    const auto data = test::make_train_dataset("projected_refuse");
    const auto ckpt = (fs::temp_directory_path() /
                       ("igan_projected_refuse_ckpt_" + std::to_string(::getpid())))
                          .string();
    auto projected = projected_options(data);
    projected.features_sha256 = "aaaa";
    const auto plain = test::micro_train_options(data, 4);
    Trainer(plain).save_checkpoint(ckpt);
    EXPECT_EQ(checkpoint_discriminator_kind(ckpt), "stylegan2");
    expect_error_containing([&] { Trainer(projected).load_checkpoint(ckpt); },
                            "trained with the stylegan2 discriminator");
    Trainer(projected).save_checkpoint(ckpt);
    expect_error_containing([&] { Trainer(plain).load_checkpoint(ckpt); },
                            "trained with the projected discriminator");
    auto other = projected;
    other.features_sha256 = "bbbb";
    expect_error_containing([&] { Trainer(other).load_checkpoint(ckpt); }, "sha256 'aaaa'");
    fs::remove_all(ckpt);
}

// Mixed: both discriminators learn, D's loss is the sum of the two alone on the same weights and
// inputs, and a checkpoint resumes to the straight run.
TEST(Projected, MixedSumsBothDiscriminatorsAndResumes) {
    const auto data = test::make_train_dataset("projected_mixed");
    const auto ckpt = (fs::temp_directory_path() /
                       ("igan_projected_mixed_ckpt_" + std::to_string(::getpid())))
                          .string();
    auto mixed = projected_options(data);
    mixed.discriminator = DiscriminatorKind::kMixed;
    mixed.augment = AugmentMode::kDiffAug;
    auto projected = mixed;
    projected.discriminator = DiscriminatorKind::kProjected;
    auto pixel = mixed;
    pixel.discriminator = DiscriminatorKind::kStyleGan2;

    Trainer m(mixed), p(projected), x(pixel);
    const auto heads_before = snapshot(*m.projected_discriminator());
    const auto pixel_before = snapshot(*m.discriminator());
    load_state_dict(*p.projected_discriminator(), state_dict(*m.projected_discriminator()), "mixed");
    load_state_dict(*x.discriminator(), state_dict(*m.discriminator()), "mixed");
    m.step();
    p.step();
    x.step();
    EXPECT_NEAR(m.last_stats().d_loss, p.last_stats().d_loss + x.last_stats().d_loss, 1e-5);
    const auto changed = [](const Weights& before, const torch::nn::Module& now) {
        int64_t n = 0;
        for (const auto& [k, v] : state_dict(now)) n += !torch::equal(v, before.at(k));
        return n;
    };
    EXPECT_GT(changed(heads_before, *m.projected_discriminator()), 0);
    EXPECT_GT(changed(pixel_before, *m.discriminator()), 0);

    m.step();
    m.save_checkpoint(ckpt);
    EXPECT_EQ(checkpoint_discriminator_kind(ckpt), "mixed");
    Trainer resumed(mixed);
    resumed.load_checkpoint(ckpt);
    for (auto* t : {&m, &resumed})
        for (int i = 0; i < 2; ++i) t->step();  // step 2 runs R1 (d_reg_every 2) on the pixel D
    const auto ga = state_dict(*m.generator()), gb = state_dict(*resumed.generator());
    for (const auto& [k, t] : ga) EXPECT_TRUE(test::all_close(t, gb.at(k), 1e-6)) << k;
    const auto da = state_dict(*m.discriminator()), db = state_dict(*resumed.discriminator());
    for (const auto& [k, t] : da) EXPECT_TRUE(test::all_close(t, db.at(k), 1e-6)) << k;
    fs::remove_all(ckpt);
}

}  // namespace
}  // namespace igan
