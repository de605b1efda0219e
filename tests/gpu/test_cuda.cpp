// `--device cuda` against the CPU path. Skipped where LibTorch sees no CUDA device (ctest -L gpu
// on the GPU machine: scripts/gpu-check.sh). cuDNN may run convolutions in TF32, so pixels agree
// to about 1e-3 rather than bit for bit.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>

#include "common/test_util.h"
#include "render/renderer.h"

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

// Training steps on the device follow the CPU trajectory: same data, latents and losses.
TEST_F(Cuda, TrainingStepsFollowTheCpuRun) {
    const auto data = test::make_train_dataset("cuda");
    auto cpu_options = test::micro_train_options(data, 4);
    auto gpu_options = cpu_options;
    gpu_options.device = "cuda";
    Trainer cpu(cpu_options), gpu(gpu_options);
    for (int i = 0; i < 3; ++i) {
        cpu.step();
        gpu.step();
        const auto &a = cpu.last_stats(), &b = gpu.last_stats();
        ASSERT_TRUE(std::isfinite(b.d_loss) && std::isfinite(b.g_loss));
        EXPECT_NEAR(b.d_loss, a.d_loss, 0.02 * (1 + std::abs(a.d_loss))) << "step " << i;
        EXPECT_NEAR(b.g_loss, a.g_loss, 0.02 * (1 + std::abs(a.g_loss))) << "step " << i;
    }
}

}  // namespace
}  // namespace igan
