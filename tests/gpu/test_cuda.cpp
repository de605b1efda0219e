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
#include "model/layers.h"
#include "model/precision.h"
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

// Many passes (strips, batches, a short last one), each copied back asynchronously while the
// next one computes: the CPU's pixels still, as floats and as the 8-bit rows igan generate
// writes.
TEST_F(Cuda, PipelinedRenderEqualsCpu) {
    const auto config = test::micro_generator_config();
    auto cpu = test::random_patch_model(config);
    auto gpu = test::random_patch_model(config, 0.3, 1, torch::kCUDA);
    const Rect r{-37, 11, 150, 90};
    EXPECT_TRUE(test::all_close(render_region(*gpu, r, opts(32, 2)),
                                render_region(*cpu, r, opts(32, 2)), kTf32Tol));
    auto rows = [&](PatchModel& model) {
        auto out = torch::empty({r.h, 3 * r.w}, torch::kUInt8);
        render_rows(model, r, opts(32, 2), [&](uint8_t* data, int64_t y0, int64_t count) {
            std::copy_n(data, count * 3 * r.w, out[y0].data_ptr<uint8_t>());
        });
        return out.to(torch::kFloat);
    };
    EXPECT_TRUE(test::all_close(rows(*gpu), rows(*cpu), 2));  // kTf32Tol in 8-bit levels
}

// LibTorch's TF32 switches, restored at the end of a test that sets them (use_cuda_math).
class Tf32Switches {
public:
    ~Tf32Switches() {
        at::globalContext().setAllowTF32CuDNN(cudnn_);
        at::globalContext().setAllowTF32CuBLAS(cublas_);
    }

private:
    bool cudnn_ = at::globalContext().allowTF32CuDNN();
    bool cublas_ = at::globalContext().allowTF32CuBLAS();
};

// Every form of the up layer (IGAN_CUDA_UP chooses one per process) on the device, in IEEE
// float32, equals the CPU's transposed convolution.
TEST_F(Cuda, UpsampleFormsEqualTheCpu) {
    const Tf32Switches restore;
    use_cuda_math(Precision::fp32);
    torch::NoGradGuard no_grad;
    torch::manual_seed(4);
    const auto x = torch::randn({2, 32, 12, 11}), w = torch::randn({24, 32, 3, 3}) * 0.1;
    const auto ref = conv_transpose2x_cropped(x, w);
    for (auto form : {UpsampleForm::transpose, UpsampleForm::phases, UpsampleForm::taps}) {
        const auto y = upsample_conv_in_form(x.cuda(), w.cuda(), form).cpu();
        EXPECT_TRUE(test::all_close(y, ref, 1e-4, 1e-4)) << upsample_form_name(form);
    }
}

// --precision on the golden model against IEEE fp32 on the device, at most and on average: bf16
// within tests/unit/test_precision.cpp's CPU bounds (measured there: 0.070 and 0.012); TF32 and
// fp16 keep 10-bit mantissas to bf16's 7, so about an eighth of that, allowed 3e-2 and 5e-3;
// and tiles do not change the canvas within each precision.
TEST_F(Cuda, ReducedPrecisionsRenderCloseToFp32OnTheGoldenModel) {
    const Tf32Switches restore;
    const auto dir = test::data_path("golden/");
    auto g = load_generator(dir + "generator.safetensors", dir + "config.json").generator;
    g->to(torch::kCUDA);
    auto model = StyledGenerator::for_seed(g, torch::kCUDA, 1);
    const Rect r{-40, -30, 72, 48};
    auto render = [&](Precision p, int64_t tile, int64_t batch) {
        use_cuda_math(p);
        auto o = opts(tile, batch);
        o.precision = p;
        return render_region(*model, r, o);
    };
    const auto fp32 = render(Precision::fp32, 72, 1);
    struct Case {
        Precision precision;
        double max, mean;
    };
    for (const auto& [p, max, mean] : {Case{Precision::tf32, 3e-2, 5e-3},
                                       Case{Precision::bf16, 0.1, 2e-2},
                                       Case{Precision::fp16, 3e-2, 5e-3}}) {
        SCOPED_TRACE(precision_name(p));
        const auto direct = render(p, 72, 1);
        EXPECT_TRUE(test::all_close(direct, fp32, max));
        EXPECT_LT((direct - fp32).abs().mean().item<double>(), mean);
        EXPECT_TRUE(test::all_close(render(p, 24, 2), direct, 1e-2));
    }
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
