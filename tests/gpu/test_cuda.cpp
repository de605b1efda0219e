// `--device cuda` against the CPU path. Skipped where LibTorch sees no CUDA device (ctest -L gpu
// on the GPU machine: scripts/gpu-check.sh). cuDNN may run convolutions in TF32, so pixels agree
// to about 1e-3 rather than bit for bit.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>

#include <filesystem>
#include <unistd.h>

#include "common/test_util.h"
#include "igan/train.h"
#include "model/coords.h"
#include "model/state.h"
#include "render/canvas.h"
#include "render/renderer.h"
#include "weights/model_file.h"

namespace igan {
namespace {

constexpr double kTf32Tol = 1e-2;  // on the [-1, 1] scale

class Cuda : public ::testing::Test {
protected:
    void SetUp() override {
        if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible to LibTorch";
    }
};

using test::opts;

TEST_F(Cuda, RenderEqualsCpu) {
    const auto config = test::micro_generator_config();
    auto cpu = test::random_patch_model(config);
    auto gpu = test::random_patch_model(config, 0.3, 1, torch::kCUDA);
    const Rect r{-37, 11, 150, 90};
    EXPECT_TRUE(test::all_close(render_region(*gpu, r, opts(64)), render_region(*cpu, r, opts(64)),
                                kTf32Tol));
}

// Latent and noise fields drawn on the device are the host's (same Philox words; Box-Muller in
// double, so float rounding at most), for every patch of a batch, a cyclic canvas included.
TEST_F(Cuda, FieldsDrawnOnTheDeviceEqualTheHostOnes) {
    const auto config = test::micro_generator_config();
    const std::vector<std::pair<int64_t, int64_t>> origins = {{-3, 5}, {7, -11}};
    for (const int64_t cyclic : {int64_t(0), 8 * ts_upscale(config)}) {
        const CanvasFields fields{4, cyclic};
        const auto cpu = make_patch_batch(config, fields, origins, 6, 9, -1, torch::kCPU);
        const auto gpu = make_patch_batch(config, fields, origins, 6, 9, -1, torch::kCUDA);
        EXPECT_TRUE(gpu.local_latent.is_cuda());
        EXPECT_TRUE(test::all_close(gpu.local_latent.cpu(), cpu.local_latent, 1e-6));
        EXPECT_TRUE(test::all_close(gpu.coords.cpu(), cpu.coords, 0));
        ASSERT_EQ(gpu.noises.size(), cpu.noises.size());
        for (size_t k = 0; k < cpu.noises.size(); ++k)
            EXPECT_TRUE(test::all_close(gpu.noises[k].cpu(), cpu.noises[k], 1e-6)) << "noise " << k;
    }
}

// Random access on the device: tiles and batches do not change the canvas.
TEST_F(Cuda, TiledEqualsDirect) {
    auto gpu = test::random_patch_model(test::micro_generator_config(), 0.3, 1, torch::kCUDA);
    const Rect r{100, -60, 97, 71};
    const auto direct = render_region(*gpu, r, opts(97));
    for (int64_t tile : {16, 33})
        for (int64_t batch : {1, 4})
            EXPECT_TRUE(test::all_close(render_region(*gpu, r, opts(tile, batch)), direct, kTf32Tol))
                << "tile " << tile << " batch " << batch;
}

// One step of each trainer: finite losses that agree within 2%.
void expect_same_step(Trainer& reference, Trainer& other) {
    reference.step();
    other.step();
    const auto &a = reference.last_stats(), &b = other.last_stats();
    ASSERT_TRUE(std::isfinite(b.d_loss) && std::isfinite(b.g_loss));
    EXPECT_NEAR(b.d_loss, a.d_loss, 0.02 * (1 + std::abs(a.d_loss))) << "step " << a.step;
    EXPECT_NEAR(b.g_loss, a.g_loss, 0.02 * (1 + std::abs(a.g_loss))) << "step " << a.step;
}

// Training steps on the device follow the CPU trajectory: same data, latents and losses.
TEST_F(Cuda, TrainingStepsFollowTheCpuRun) {
    const auto data = test::make_train_dataset("cuda");
    auto cpu_options = test::micro_train_options(data, 4);
    auto gpu_options = cpu_options;
    gpu_options.device = "cuda";
    Trainer cpu(cpu_options), gpu(gpu_options);
    for (int i = 0; i < 3; ++i) expect_same_step(cpu, gpu);
}

void expect_close_weights(torch::nn::Module& a, torch::nn::Module& b, double atol) {
    const auto sa = state_dict(a), sb = state_dict(b);
    for (const auto& [k, t] : sa) EXPECT_TRUE(test::all_close(t.cpu(), sb.at(k).cpu(), atol)) << k;
}

// Checkpoints do not depend on the device: a run resumed on the other device continues as the
// saved one does, within TF32's tolerance (Adam moves each weight by at most about lr a step).
TEST_F(Cuda, CheckpointsResumeAcrossDevices) {
    const auto data = test::make_train_dataset("cuda_resume");
    auto options = [&](const std::string& device) {
        auto o = test::micro_train_options(data, 4);
        o.device = device;
        return o;
    };
    for (const std::string from : {"cpu", "cuda"}) {
        const std::string to = from == "cpu" ? "cuda" : "cpu";
        SCOPED_TRACE(from + " -> " + to);
        const auto ckpt = (std::filesystem::temp_directory_path() /
                           ("igan_resume_" + from + "_" + std::to_string(::getpid())))
                              .string();
        Trainer saved(options(from));
        for (int i = 0; i < 2; ++i) saved.step();
        saved.save_checkpoint(ckpt);
        Trainer resumed(options(to));
        resumed.load_checkpoint(ckpt);
        for (int i = 0; i < 2; ++i) expect_same_step(saved, resumed);
        expect_close_weights(*saved.generator(), *resumed.generator(), 2e-2);
        expect_close_weights(*saved.discriminator(), *resumed.discriminator(), 2e-2);
        std::filesystem::remove_all(ckpt);
    }
}

// The shipped checkpoint's optimiser files come from LibTorch 1.13, whose state keys LibTorch
// 2.x's own loader turned into null states: `igan train --device cuda --resume` crashed (SIGSEGV)
// at the first step.
TEST_F(Cuda, TheShippedCheckpointResumes) {
    const auto dir = test::data_path("../../models/landscape-tiny-run/checkpoints/step-00009474");
    if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no " << dir;
    TrainOptions o;
    o.model = load_generator(dir + "/G.safetensors").config;
    o.model.discriminator.stddev_group = 2;
    o.data.folder = test::make_train_dataset("cuda_shipped");
    o.data.full_size = o.model.generator.full_size;
    o.data.patch_size = o.model.generator.patch_size();
    o.batch = 2;
    o.augment = AugmentMode::kAda;
    o.device = "cuda";
    Trainer t(o);
    t.load_checkpoint(dir);
    t.step();
    EXPECT_TRUE(std::isfinite(t.last_stats().d_loss) && std::isfinite(t.last_stats().g_loss));
}

// The driver's sample grids render with the generator where it trains (they took a CPU
// StyledGenerator over CUDA weights).
TEST_F(Cuda, TrainingRunWritesSamplesAndACheckpoint) {
    TrainRequest r;
    r.data = test::make_train_dataset("cuda_run");
    r.out =
        (std::filesystem::temp_directory_path() / ("igan_cuda_run_" + std::to_string(::getpid())))
            .string();
    std::filesystem::remove_all(r.out);
    r.device = "cuda";
    r.batch = 2;
    r.iters = 2;
    r.sample_every = r.checkpoint_every = 1;
    r.augment = "none";
    const auto result = run_train(r, nullptr, nullptr);
    EXPECT_EQ(result.step, 2);
    EXPECT_TRUE(std::filesystem::exists(r.out + "/samples/step-00000001.png"));
    EXPECT_TRUE(std::filesystem::exists(result.checkpoint + "/optim_g.pt"));
    std::filesystem::remove_all(r.out);
}

}  // namespace
}  // namespace igan
