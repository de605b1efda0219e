// Training: determinism across resume and data-parallel ranks, atomic checkpoints, data pipeline.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/test_util.h"
#include "core/error.h"
#include "io/png.h"
#include "model/state.h"
#include "train/trainer.h"

namespace igan {
namespace {

namespace fs = std::filesystem;

// A very small model (2 upsamplings, 29-px patches) so that steps take milliseconds.
ModelConfig micro_config() {
    ModelConfig c;
    c.name = "micro";
    c.generator = test::micro_generator_config(48);
    c.discriminator.patch_size = c.generator.patch_size();
    c.discriminator.d_extra_multiplier = 1.0 / 32;
    c.discriminator.stddev_group = 4;
    return c;
}

// Synthetic "photos": sky-like gradient above, textured ground below.
std::string make_dataset(const std::string& name) {
    const fs::path dir = fs::temp_directory_path() / ("igan_train_data_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (int k = 0; k < 3; ++k) {
        const int64_t w = 90 + 10 * k, h = 64;
        std::vector<uint8_t> px(size_t(w * h * 3));
        for (int64_t y = 0; y < h; ++y)
            for (int64_t x = 0; x < w; ++x)
                for (int c = 0; c < 3; ++c)
                    px[(y * w + x) * 3 + c] = uint8_t(y < h / 2 ? 120 + 2 * y + 20 * c
                                                                : (x * 7 + y * 13 + 40 * c + k * 30) % 200);
        PngWriter png((dir / ("img" + std::to_string(k) + ".png")).string(), w, h, {});
        png.write_rows(px.data(), h);
        png.finish();
    }
    // An unreadable file must be skipped, not fatal.
    std::FILE* f = std::fopen((dir / "broken.jpg").c_str(), "wb");
    std::fputs("not a jpeg", f);
    std::fclose(f);
    return dir.string();
}

TrainOptions micro_options(const std::string& data, int64_t batch) {
    TrainOptions o;
    o.model = micro_config();
    o.data.folder = data;
    o.data.full_size = o.model.generator.full_size;
    o.data.patch_size = o.model.generator.patch_size();
    o.data.seed = 5;
    o.batch = batch;
    o.seed = 5;
    o.d_reg_every = 2;  // exercise R1 and path length within a few steps
    o.g_reg_every = 2;
    return o;
}

void expect_same_weights(torch::nn::Module& a, torch::nn::Module& b, double atol) {
    const auto sa = state_dict(a), sb = state_dict(b);
    for (const auto& [k, t] : sa) EXPECT_TRUE(test::all_close(t, sb.at(k), atol)) << k;
}

TEST(Train, DataPipelineIsDeterministicAndLabelled) {
    const auto dir = make_dataset("pipeline");
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
    const auto data = make_dataset("resume");
    const auto ckpt = (fs::temp_directory_path() / "igan_train_resume_ckpt").string();
    Trainer straight(micro_options(data, 4));
    for (int i = 0; i < 4; ++i) straight.step();

    {
        Trainer first(micro_options(data, 4));
        for (int i = 0; i < 2; ++i) first.step();
        first.save_checkpoint(ckpt);
    }
    Trainer resumed(micro_options(data, 4));
    resumed.load_checkpoint(ckpt);
    EXPECT_EQ(resumed.current_step(), 2);
    for (int i = 0; i < 2; ++i) resumed.step();
    expect_same_weights(*straight.generator(), *resumed.generator(), 1e-6);
    expect_same_weights(*straight.generator_ema(), *resumed.generator_ema(), 1e-6);
    expect_same_weights(*straight.discriminator(), *resumed.discriminator(), 1e-6);
    fs::remove_all(ckpt);
}

TEST(Train, StepsChangeWeightsAndLossesAreFinite) {
    Trainer t(micro_options(make_dataset("finite"), 4));
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

TEST(Train, InterruptedCheckpointWriteLeavesThePreviousOneLoadable) {
    const auto run = fs::temp_directory_path() / "igan_train_interrupted";
    fs::remove_all(run);
    Trainer t(micro_options(make_dataset("interrupted"), 2));
    t.step();
    t.save_checkpoint((run / "checkpoints" / "step-00000001").string());
    // What a kill -9 in the middle of the next write leaves behind: a partial temp folder.
    fs::create_directories(run / "checkpoints" / "step-00000002.tmp-999");
    std::FILE* f = std::fopen((run / "checkpoints" / "step-00000002.tmp-999" / "G.safetensors").c_str(), "wb");
    std::fputs("partial", f);
    std::fclose(f);
    const auto latest = latest_checkpoint(run.string());
    EXPECT_EQ(fs::path(latest).filename(), "step-00000001");
    Trainer r(micro_options(make_dataset("interrupted"), 2));
    EXPECT_NO_THROW(r.load_checkpoint(latest));
    EXPECT_EQ(r.current_step(), 1);
    fs::remove_all(run);
}

// Two ranks with batch 2 over c10d Gloo reach the weights of one process with batch 4.
TEST(Train, TwoRanksEqualOneProcessWithTheWholeBatch) {
    const auto data = make_dataset("ddp");
    auto single_options = micro_options(data, 4);
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

}  // namespace
}  // namespace igan
