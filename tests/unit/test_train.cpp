// Training: determinism across resume and data-parallel ranks, atomic checkpoints, data pipeline.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/test_util.h"
#include "core/error.h"
#include "io/png.h"
#include "model/state.h"
#include "train/trainer.h"

namespace igan {
namespace {

namespace fs = std::filesystem;

void expect_same_weights(torch::nn::Module& a, torch::nn::Module& b, double atol) {
    const auto sa = state_dict(a), sb = state_dict(b);
    for (const auto& [k, t] : sa) EXPECT_TRUE(test::all_close(t, sb.at(k), atol)) << k;
}

TEST(Train, DataPipelineIsDeterministicAndLabelled) {
    const auto dir = test::make_train_dataset("pipeline");
    DataOptions o;
    o.folder = dir;
    o.full_size = 48;
    o.patch_size = 29;
    o.seed = 1;
    std::vector<std::string> warnings;
    ImageDataset data(o, [&](const std::string& w) { warnings.push_back(w); });
    EXPECT_EQ(data.size(), 3);
    EXPECT_EQ(warnings.size(), 1u);  // broken.jpg
    const auto a = data.batch(7, 0, 6), b = data.batch(7, 0, 6);
    EXPECT_TRUE(torch::equal(a.images, b.images));
    EXPECT_EQ(a.images.sizes(), (std::vector<int64_t>{6, 3, 29, 29}));
    EXPECT_LE(a.images.max().item<float>(), 1.f);
    EXPECT_GE(a.images.min().item<float>(), -1.f);
    EXPECT_LE(a.labels.abs().max().item<float>(), 1.f);
    // Samples are keyed by index in the global batch: a slice equals the same rows.
    EXPECT_TRUE(torch::equal(data.batch(7, 2, 4).images, a.images.narrow(0, 2, 2)));
    EXPECT_FALSE(torch::equal(data.batch(8, 0, 6).images, a.images));
    o.folder = dir + "/nope";
    EXPECT_THROW(ImageDataset(o, [](const std::string&) {}), Error);
}

TEST(Train, ResumeEqualsStraightRun) {
    const auto data = test::make_train_dataset("resume");
    const auto ckpt =
        (fs::temp_directory_path() / ("igan_train_resume_ckpt_" + std::to_string(::getpid())))
            .string();
    Trainer straight(test::micro_train_options(data, 4));
    for (int i = 0; i < 4; ++i) straight.step();

    {
        Trainer first(test::micro_train_options(data, 4));
        for (int i = 0; i < 2; ++i) first.step();
        first.save_checkpoint(ckpt);
    }
    Trainer resumed(test::micro_train_options(data, 4));
    resumed.load_checkpoint(ckpt);
    EXPECT_EQ(resumed.current_step(), 2);
    for (int i = 0; i < 2; ++i) resumed.step();
    expect_same_weights(*straight.generator(), *resumed.generator(), 1e-6);
    expect_same_weights(*straight.generator_ema(), *resumed.generator_ema(), 1e-6);
    expect_same_weights(*straight.discriminator(), *resumed.discriminator(), 1e-6);
    fs::remove_all(ckpt);
}

TEST(Train, StepsChangeWeightsAndLossesAreFinite) {
    Trainer t(test::micro_train_options(test::make_train_dataset("finite"), 4));
    const auto before = state_dict(*t.generator());
    std::map<std::string, torch::Tensor> copy;
    for (const auto& [k, v] : before) copy[k] = v.clone();
    for (int i = 0; i < 3; ++i) {
        t.step();
        const auto& s = t.last_stats();
        EXPECT_TRUE(std::isfinite(s.d_loss) && std::isfinite(s.g_loss) && std::isfinite(s.diversity));
    }
    EXPECT_FALSE(torch::equal(copy.at("texture_synthesizer.convs.0.conv.weight"),
                              state_dict(*t.generator()).at("texture_synthesizer.convs.0.conv.weight")));
}

// --position-weight scales every vertical-position term: at 0 D's position head gets no gradient
// (Adam moves nothing), at 1 it learns; the weight is recorded in the checkpoint.
TEST(Train, PositionWeightScalesThePositionTerms) {
    const auto data = test::make_train_dataset("position_weight");
    for (const double w : {0.0, 1.0}) {
        auto o = test::micro_train_options(data, 4);
        o.coord_ac_w = w;
        Trainer t(o);
        std::map<std::string, torch::Tensor> before;
        for (const auto& [k, v] : state_dict(*t.discriminator()))
            if (k.rfind("coord_linear.", 0) == 0) before[k] = v.clone();
        ASSERT_FALSE(before.empty());
        t.step();
        int64_t changed = 0;
        for (const auto& [k, v] : before) changed += !torch::equal(v, state_dict(*t.discriminator()).at(k));
        if (w == 0) EXPECT_EQ(changed, 0);
        else EXPECT_GT(changed, 0);
        const auto ckpt = (fs::temp_directory_path() /
                           ("igan_position_weight_" + std::to_string(::getpid())))
                              .string();
        t.save_checkpoint(ckpt);
        std::ifstream f(fs::path(ckpt) / "trainer_state.json");
        const std::string state((std::istreambuf_iterator<char>(f)), {});
        EXPECT_NE(state.find(w == 0 ? "\"position_weight\": 0.0" : "\"position_weight\": 1.0"),
                  std::string::npos);
        fs::remove_all(ckpt);
    }
}

TEST(Train, ResumeTakesTheRunsLearningRateAndTheCheckpointsMoments) {
    const auto data = test::make_train_dataset("lr");
    const auto ckpt = (fs::temp_directory_path() / ("igan_train_lr_" + std::to_string(::getpid()))).string();
    Trainer first(test::micro_train_options(data, 4));
    first.step();
    first.save_checkpoint(ckpt);
    auto slower = test::micro_train_options(data, 4);
    slower.lr = first.options().lr / 4;
    Trainer resumed(slower), fresh(slower);
    resumed.load_checkpoint(ckpt);
    EXPECT_TRUE(resumed.moments_restored());
    EXPECT_EQ(resumed.learning_rates(), fresh.learning_rates());
    EXPECT_DOUBLE_EQ(resumed.learning_rates().first, first.learning_rates().first / 4);
    EXPECT_DOUBLE_EQ(resumed.learning_rates().second, first.learning_rates().second / 4);
    // Same moments, another step size: the next step moves the weights by other amounts.
    Trainer same(test::micro_train_options(data, 4));
    same.load_checkpoint(ckpt);
    same.step();
    resumed.step();
    const auto key = "texture_synthesizer.convs.0.conv.weight";
    EXPECT_FALSE(torch::equal(state_dict(*same.generator()).at(key), state_dict(*resumed.generator()).at(key)));

    // Without optim_*.pt (as the repository keeps checkpoints) a resume starts Adam afresh:
    // the weights are the checkpoint's, the next step is finite and differs from a full resume.
    fs::remove(fs::path(ckpt) / "optim_g.pt");
    fs::remove(fs::path(ckpt) / "optim_d.pt");
    Trainer light(test::micro_train_options(data, 4));
    light.load_checkpoint(ckpt);
    EXPECT_FALSE(light.moments_restored());
    EXPECT_EQ(light.current_step(), 1);
    expect_same_weights(*light.generator(), *first.generator(), 0);
    light.step();
    EXPECT_TRUE(std::isfinite(light.last_stats().g_loss));
    EXPECT_FALSE(torch::equal(state_dict(*same.generator()).at(key), state_dict(*light.generator()).at(key)));
    fs::remove_all(ckpt);
}

TEST(Train, InitStartsGeneratorsFromACheckpointAndEverythingElseFresh) {
    const auto data = test::make_train_dataset("init");
    const auto ckpt =
        (fs::temp_directory_path() / ("igan_train_init_ckpt_" + std::to_string(::getpid())))
            .string();
    Trainer trained(test::micro_train_options(data, 4));
    for (int i = 0; i < 2; ++i) trained.step();
    trained.save_checkpoint(ckpt);

    Trainer fresh(test::micro_train_options(data, 4));
    Trainer tuned(test::micro_train_options(data, 4));
    tuned.init_generators(ckpt + "/G.safetensors", ckpt + "/G_ema.safetensors");
    EXPECT_EQ(tuned.current_step(), 0);
    expect_same_weights(*tuned.generator(), *trained.generator(), 0);
    expect_same_weights(*tuned.generator_ema(), *trained.generator_ema(), 0);
    expect_same_weights(*tuned.discriminator(), *fresh.discriminator(), 0);
    // G and G_ema of a trained run differ, so each came from its own file.
    EXPECT_FALSE(torch::equal(state_dict(*trained.generator()).at("texture_synthesizer.convs.0.conv.weight"),
                              state_dict(*trained.generator_ema()).at("texture_synthesizer.convs.0.conv.weight")));
    tuned.step();
    EXPECT_TRUE(std::isfinite(tuned.last_stats().g_loss));
    fs::remove_all(ckpt);
}

TEST(Train, InterruptedCheckpointWriteLeavesThePreviousOneLoadable) {
    const auto run =
        fs::temp_directory_path() / ("igan_train_interrupted_" + std::to_string(::getpid()));
    fs::remove_all(run);
    Trainer t(test::micro_train_options(test::make_train_dataset("interrupted"), 2));
    t.step();
    t.save_checkpoint((run / "checkpoints" / "step-00000001").string());
    // What a kill -9 in the middle of the next write leaves behind: a partial temp folder.
    fs::create_directories(run / "checkpoints" / "step-00000002.tmp-999");
    std::FILE* f = std::fopen((run / "checkpoints" / "step-00000002.tmp-999" / "G.safetensors").c_str(), "wb");
    std::fputs("partial", f);
    std::fclose(f);
    const auto latest = latest_checkpoint(run.string());
    EXPECT_EQ(fs::path(latest).filename(), "step-00000001");
    Trainer r(test::micro_train_options(test::make_train_dataset("interrupted"), 2));
    EXPECT_NO_THROW(r.load_checkpoint(latest));
    EXPECT_EQ(r.current_step(), 1);
    fs::remove_all(run);
}

// Two ranks with batch 2 over c10d Gloo reach the weights of one process with batch 4.
TEST(Train, TwoRanksEqualOneProcessWithTheWholeBatch) {
    if (!data_parallel_support().gloo) GTEST_SKIP() << "built without c10d's Gloo backend";
    const auto data = test::make_train_dataset("ddp");
    auto single_options = test::micro_train_options(data, 4);
    single_options.model.discriminator.stddev_group = 2;
    Trainer single(single_options);
    for (int i = 0; i < 3; ++i) single.step();

    std::unique_ptr<Trainer> ranks[2];
    std::exception_ptr errors[2];
    const int port = 29000 + int(::getpid() % 1000);
    std::thread threads[2];
    for (int r = 0; r < 2; ++r) {
        threads[r] = std::thread([&, r] {
            try {
                auto o = single_options;
                o.batch = 2;
                o.rank = r;
                o.world_size = 2;
                o.master_port = port;
                ranks[r] = std::make_unique<Trainer>(o);
                for (int i = 0; i < 3; ++i) ranks[r]->step();
            } catch (...) {
                errors[r] = std::current_exception();
            }
        });
    }
    for (auto& t : threads) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    // Float sums are split differently across ranks; 3 Adam steps keep this well below 1e-4.
    expect_same_weights(*single.generator(), *ranks[0]->generator(), 1e-4);
    expect_same_weights(*single.discriminator(), *ranks[1]->discriminator(), 1e-4);
}

// NCCL for CUDA where built in, else Gloo; without either, a clear usage error, also from the
// trainer of this build when it lacks Gloo.
TEST(Train, DataParallelBackendIsChosenOrRefusedClearly) {
    const DataParallelSupport none, gloo{true, false}, both{true, true};
    EXPECT_EQ(data_parallel_backend(1, false, none), "");
    EXPECT_EQ(data_parallel_backend(2, false, gloo), "gloo");
    EXPECT_EQ(data_parallel_backend(2, true, gloo), "gloo");
    EXPECT_EQ(data_parallel_backend(2, true, both), "nccl");
    EXPECT_EQ(data_parallel_backend(2, false, both), "gloo");
    for (const bool cuda : {false, true}) {
        try {
            data_parallel_backend(2, cuda, cuda ? DataParallelSupport{false, false} : none);
            ADD_FAILURE() << "no backend was accepted";
        } catch (const UsageError& e) {
            EXPECT_NE(std::string(e.what()).find(cuda ? "built without NCCL or Gloo"
                                                      : "built without Gloo, which data-parallel "
                                                        "training on the CPU needs"),
                      std::string::npos)
                << e.what();
        }
    }
    if (!data_parallel_support().gloo) {
        auto o = test::micro_train_options(test::make_train_dataset("no_gloo"), 2);
        o.world_size = 2;
        EXPECT_THROW(Trainer{o}, UsageError);
    }
}

}  // namespace
}  // namespace igan
