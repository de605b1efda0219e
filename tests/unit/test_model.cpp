// Configs, geometry, weight files and strict loading.
#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "weights/model_file.h"
#include "common/test_util.h"
#include "core/error.h"
#include "igan/igan.h"
#include "io/safetensors.h"
#include "model/discriminator.h"
#include "model/generator.h"
#include "model/layers.h"
#include "model/state.h"
#include "render/canvas.h"

namespace igan {
namespace {

std::string temp_file(const std::string& name) {
    // per process: test binaries may run at once (ctest -j)
    return (std::filesystem::temp_directory_path() /
            ("igan_test_" + std::to_string(::getpid()) + "_" + name))
        .string();
}

TEST(Config, PaperGeometryMatchesTheOriginal) {
    const auto c = preset_config("paper").generator;
    EXPECT_EQ(c.patch_size(), 101);
    EXPECT_EQ(c.ss_input_size(), 35);
    EXPECT_EQ(c.n_latent(), 9);
    EXPECT_EQ(c.hori_period(), 139);
    EXPECT_NEAR(c.vert_scale(), 0.3, 1e-12);
    EXPECT_EQ(ts_output_sizes(c, 11), (std::vector<int64_t>{19, 17, 31, 29, 55, 53, 103, 101}));
    EXPECT_EQ(ts_output_sizes(c, 22), (std::vector<int64_t>{41, 39, 75, 73, 143, 141, 279, 277}));
    EXPECT_EQ(c.to_rgb_style_index(), (std::vector<int>{3, 5, 7, 8}));
    // docs/contract.md: about 48.7 GMAC per 101x101 patch.
    EXPECT_NEAR(generator_macs(c, 11) * 1e-9, 48.7, 0.5);
    const auto d = preset_config("paper").discriminator;
    EXPECT_EQ(d.final_size(), 3);
    EXPECT_EQ(d.channels_at(128), 256);
}

TEST(Config, ParameterCountsMatchTheOriginal) {
    const auto c = preset_config("paper");
    Generator g(c.generator);
    EXPECT_EQ(count_parameters(*g), 36358944);  // docs/convert.md
    int64_t buffers = 0;
    for (const auto& b : g->buffers()) buffers += b.numel();
    EXPECT_EQ(count_parameters(*g) + buffers, 36365816);
    Discriminator d(c.discriminator);
    int64_t d_total = count_parameters(*d);
    for (const auto& b : d->buffers()) d_total += b.numel();
    EXPECT_EQ(d_total, 28915620);  // docs/convert.md
}

TEST(Config, JsonRoundTripAndStrictKeys) {
    const auto c = preset_config("tiny");
    const auto back = model_config_from_string(model_config_to_string(c));
    EXPECT_EQ(nlohmann::json(back), nlohmann::json(c));
    EXPECT_THROW(model_config_from_string(R"({"generator": {"n_mpl": 3}})"), Error);
    EXPECT_THROW(model_config_from_string("{not json"), Error);
    EXPECT_THROW(load_model_config("no-such-config"), Error);
}

TEST(Config, ValidateListsEveryProblem) {
    ModelConfig c = preset_config("tiny");
    c.generator.global_latent_dim = -1;
    c.generator.ts_conv_out_channels = {8, 8, 8};
    c.discriminator.stddev_group = 0;
    EXPECT_EQ(c.validate().size(), 3u);
    try {
        model_config_from_string(nlohmann::json(c).dump());
        FAIL() << "invalid config accepted";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("global_latent_dim"), std::string::npos) << msg;
        EXPECT_NE(msg.find("stddev_group"), std::string::npos) << msg;
    }
}

TEST(ModelFile, SaveLoadRoundTrip) {
    const auto c = preset_config("tiny");
    torch::manual_seed(1);
    Generator g(c.generator);
    const auto path = temp_file("roundtrip.safetensors");
    save_module(path, *g, c, "infinitygan.generator", 17);
    const auto loaded = load_generator(path);
    EXPECT_EQ(loaded.step, 17);
    EXPECT_EQ(loaded.config.name, "tiny");
    const auto a = state_dict(*g), b = state_dict(*loaded.generator);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [k, t] : a) EXPECT_TRUE(torch::equal(t, b.at(k))) << k;
    std::filesystem::remove(path);
}

TEST(ModelFile, StrictLoadingListsEveryProblemAtOnce) {
    const auto c = preset_config("tiny");
    Generator g(c.generator);
    auto state = state_dict(*g);
    state.erase("texture_synthesizer.mapping.1.weight");
    state.erase("texture_synthesizer.convs.0.conv.weight");
    state["texture_synthesizer.extra"] = torch::zeros({2});
    state["texture_synthesizer.to_rgbs.0.bias"] = torch::zeros({1, 4, 1, 1});
    Generator target(c.generator);
    try {
        load_state_dict(*target, state, "bad.safetensors");
        FAIL() << "strict loading accepted a broken state dict";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("4 problems"), std::string::npos) << msg;
        EXPECT_NE(msg.find("missing texture_synthesizer.mapping.1.weight"), std::string::npos);
        EXPECT_NE(msg.find("missing texture_synthesizer.convs.0.conv.weight"), std::string::npos);
        EXPECT_NE(msg.find("unexpected texture_synthesizer.extra"), std::string::npos);
        EXPECT_NE(msg.find("wrong shape for texture_synthesizer.to_rgbs.0.bias"), std::string::npos);
    }
}

TEST(ModelFile, FileWithoutMetadataNeedsAConfig) {
    const auto path = test::data_path("golden/generator.safetensors");
    EXPECT_THROW(load_generator(path), Error);
    EXPECT_NO_THROW(load_generator(path, "golden"));
    EXPECT_THROW(load_generator(path, "tiny"), Error);  // shapes differ
}

TEST(ModelFile, TruncatedFileIsAnError) {
    const auto c = preset_config("tiny");
    Generator g(c.generator);
    const auto path = temp_file("truncated.safetensors");
    save_module(path, *g, c, "infinitygan.generator", 0);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
    EXPECT_THROW(load_generator(path), Error);
    std::filesystem::remove(path);
}

TEST(ModelFile, NonFiniteWeightsAreRefusedByName) {
    const auto c = preset_config("tiny");
    torch::manual_seed(1);
    Generator g(c.generator);
    {
        torch::NoGradGuard no_grad;
        auto state = state_dict(*g);
        state.at("texture_synthesizer.mapping.1.weight").view(-1)[3] = NAN;
        state.at("texture_synthesizer.to_rgbs.0.bias").fill_(-INFINITY);
    }
    const auto path = temp_file("nan.safetensors");
    save_module(path, *g, c, "infinitygan.generator", 0);
    try {
        load_generator(path);
        FAIL() << "NaN weights were accepted";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("2 tensors hold NaN or infinite values"), std::string::npos) << msg;
        EXPECT_NE(msg.find("texture_synthesizer.mapping.1.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("texture_synthesizer.to_rgbs.0.bias"), std::string::npos) << msg;
    }
    Discriminator d(c.discriminator);
    {
        torch::NoGradGuard no_grad;
        d->parameters().front().fill_(NAN);
    }
    save_module(path, *d, c, "infinitygan.discriminator", 0);
    EXPECT_THROW(load_discriminator(path, c), Error);
    std::filesystem::remove(path);
}

TEST(ModelFile, OverflowingWeightsGiveAnErrorNotABlackImage) {
    // Finite weights whose activations overflow float32: the render must fail, not quantize
    // NaN to black.
    const auto c = preset_config("tiny");
    Generator g(c.generator);
    {
        torch::NoGradGuard no_grad;
        for (auto& p : g->parameters()) p.fill_(1e38);
    }
    const auto path = temp_file("huge.safetensors");
    save_module(path, *g, c, "infinitygan.generator", 0);
    const Engine engine(path);
    GenerateRequest r;
    r.width = r.height = 16;
    try {
        engine.render_rgb(r);
        FAIL() << "an overflowing generator rendered an image";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("NaN or infinite"), std::string::npos) << e.what();
    }
    std::filesystem::remove(path);
}

TEST(ModelFile, OtherFormatVersionsAreRefused) {
    const auto c = preset_config("tiny");
    Generator g(c.generator);
    const auto path = temp_file("version.safetensors");
    save_module(path, *g, c, "infinitygan.generator", 0);
    TensorFile file = read_safetensors(path);
    EXPECT_EQ(file.metadata.at("igan.format_version"), "1");
    file.metadata["igan.format_version"] = "99";
    write_safetensors(path, file);
    try {
        load_generator(path);
        FAIL() << "format version 99 was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("igan.format_version is '99'"), std::string::npos)
            << e.what();
    }
    std::filesystem::remove(path);
}

// One identity check for every weight file: a generator file is not a discriminator, and the
// other way round, whatever their tensors.
TEST(ModelFile, OtherArchsAreRefused) {
    const auto c = preset_config("tiny");
    const auto path = temp_file("arch.safetensors");
    Generator g(c.generator);
    save_module(path, *g, c, kGeneratorArch, 0);
    try {
        load_discriminator(path, c);
        FAIL() << "a generator loaded as a discriminator";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("holds 'infinitygan.generator', not "
                                             "infinitygan.discriminator"),
                  std::string::npos)
            << e.what();
    }
    Discriminator d(c.discriminator);
    save_module(path, *d, c, kDiscriminatorArch, 0);
    EXPECT_THROW(load_generator(path), Error);
    std::filesystem::remove(path);
}

// RLIMIT_FSIZE stands in for a full disk: LibTorch's own file writer throws from its destructor
// there (std::terminate, SIGABRT); save_optimizer must throw igan::Error and leave nothing.
TEST(ModelFile, OptimizerStateOnAFullDiskIsAnErrorNotAnAbort) {
    torch::nn::Linear net(256, 256);
    torch::optim::Adam adam(net->parameters());
    net->forward(torch::ones({1, 256})).sum().backward();
    adam.step();  // Adam's moments: 512 KB of state
    const auto dir = std::filesystem::path(temp_file("optim"));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const auto path = (dir / "optim.pt").string();
    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
    rlimit small = saved;
    small.rlim_cur = 64 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    std::string message;
    try {
        save_optimizer(adam, path);
    } catch (const Error& e) {
        message = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, SIG_DFL);
    EXPECT_NE(message.find("cannot write " + path), std::string::npos) << message;
    EXPECT_TRUE(std::filesystem::is_empty(dir));

    save_optimizer(adam, path);
    torch::optim::Adam loaded(net->parameters());
    torch::load(loaded, path);
    EXPECT_EQ(loaded.state().size(), adam.state().size());
    std::filesystem::remove_all(dir);
}

TEST(ModelFile, StaleTemporariesAreRemoved) {
    const auto dir = std::filesystem::path(temp_file("stale"));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "step-00000004");
    std::filesystem::create_directories(dir / "step-00000006.tmp-123");
    std::filesystem::create_directories(dir / "step-00000006.tmp-456");
    std::ofstream(dir / "step-00000006.tmp-456" / "G.safetensors") << "partial";
    remove_stale_temporaries(dir.string());
    std::vector<std::string> left;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        left.push_back(e.path().filename().string());
    EXPECT_EQ(left, std::vector<std::string>{"step-00000004"});
    std::filesystem::remove_all(dir);
}

TEST(Canvas, GlobalLatentDependsOnlyOnSeed) {
    const auto a = global_latent_for_seed(5, 64);
    EXPECT_TRUE(torch::equal(a, global_latent_for_seed(5, 64)));
    EXPECT_FALSE(torch::equal(a, global_latent_for_seed(6, 64)));
    EXPECT_EQ(a.sizes(), (std::vector<int64_t>{1, 64}));
}

// The inference upsampling (tap planes from one matrix product, summed per output row) against
// LibTorch's own transposed convolution, on odd and even sizes.
TEST(Layers, TapPlaneUpsamplingEqualsTransposedConvolution) {
    torch::manual_seed(3);
    namespace F = torch::nn::functional;
    torch::NoGradGuard no_grad;
    for (auto [h, w] : {std::pair<int64_t, int64_t>{5, 7}, {8, 8}, {1, 2}}) {
        const auto x = torch::randn({2, 6, h, w});
        const auto k = torch::randn({4, 6, 3, 3});
        const auto ref_full = F::conv_transpose2d(x, k.transpose(0, 1),
                                                  F::ConvTranspose2dFuncOptions().stride(2));
        const auto ref = ref_full.narrow(-2, 1, 2 * h - 1).narrow(-1, 1, 2 * w - 1);
        const auto got = interleave_taps(upsample_taps(x, k));
        ASSERT_EQ(got.sizes(), ref.sizes());
        EXPECT_TRUE(test::all_close(got, ref, 1e-5));
        EXPECT_TRUE(test::all_close(got, conv_transpose2x_cropped(x, k), 1e-5));
    }
}

// The one-pass inference blur equals the tensor-op path bit for bit, on a cropped view too;
// the banded upsampling blur equals the whole layer's.
TEST(Layers, InferenceBlurEqualsTensorPath) {
    torch::manual_seed(4);
    const auto base = torch::randn({2, 3, 12, 13});
    const auto view = base.narrow(-2, 1, 10).narrow(-1, 0, 11);
    torch::Tensor fast;
    {
        torch::NoGradGuard no_grad;
        fast = blur3_valid(view, 4.0);
    }
    const auto slow = blur3_valid(view.clone().requires_grad_(), 4.0).detach();
    EXPECT_EQ((fast - slow).abs().max().item<double>(), 0.0);
    torch::NoGradGuard no_grad;
    // The banded upsampling + blur against the whole layer's, with one to all rows per band.
    const auto x = torch::randn({2, 5, 6, 7});
    const auto k = torch::randn({3, 5, 3, 3});
    const auto whole = blur3_valid(interleave_taps(upsample_taps(x, k)), 4.0);
    for (int64_t band_columns : {1, 7, 15, 0}) {
        const auto banded = upsample2x_blur(x, k, 4.0, band_columns);
        ASSERT_EQ(banded.sizes(), whole.sizes());
        EXPECT_TRUE(test::all_close(banded, whole, 1e-5)) << band_columns;
    }
}

}  // namespace
}  // namespace igan
