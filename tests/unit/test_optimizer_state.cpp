// Optimizer state files (weights/model_file.h): written from CPU copies with index keys, read
// from any LibTorch's layout onto the parameters' device, continuing exactly where they left off.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "core/error.h"
#include "weights/model_file.h"

namespace igan {
namespace {

namespace fs = std::filesystem;

struct Net {
    torch::nn::Sequential net{torch::nn::Linear(4, 3), torch::nn::Linear(3, 2)};
    torch::optim::Adam adam{net->parameters(), torch::optim::AdamOptions(0.01).betas({0.0, 0.99})};

    void step(int k) {
        adam.zero_grad();
        net->forward(torch::arange(8.0f).view({2, 4}) / (k + 1)).pow(2).sum().backward();
        adam.step();
    }
    void copy_weights_from(Net& other) {
        torch::NoGradGuard no_grad;
        auto src = other.net->parameters();
        auto dst = net->parameters();
        for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
    }
    const torch::optim::AdamParamState& state(size_t i) {
        const torch::Tensor p = net->parameters()[i];
        for (const auto& [key, s] : adam.state())
            if (state_key_matches(key, p)) return static_cast<torch::optim::AdamParamState&>(*s);
        throw Error("no state for parameter " + std::to_string(i));
    }
    template <typename Key>
    static bool state_key_matches(const Key& key, const torch::Tensor& p) {
        if constexpr (std::is_same_v<Key, std::string>)
            return key == c10::guts::to_string(p.unsafeGetTensorImpl());
        else
            return key == p.unsafeGetTensorImpl();
    }
};

void expect_same_state(Net& a, Net& b) {
    ASSERT_EQ(a.adam.state().size(), b.adam.state().size());
    for (size_t i = 0; i < a.net->parameters().size(); ++i) {
        SCOPED_TRACE(i);
        const auto &sa = a.state(i), &sb = b.state(i);
        EXPECT_EQ(sa.step(), sb.step());
        EXPECT_TRUE(torch::equal(sa.exp_avg(), sb.exp_avg()));
        EXPECT_TRUE(torch::equal(sa.exp_avg_sq(), sb.exp_avg_sq()));
        EXPECT_TRUE(sb.exp_avg().device().is_cpu());
    }
}

// Resumed from the file, the optimizer takes the very step the saved one takes.
void expect_identical_continuation(Net& saved, Net& loaded) {
    saved.step(7);
    loaded.step(7);
    for (size_t i = 0; i < saved.net->parameters().size(); ++i)
        EXPECT_TRUE(torch::equal(saved.net->parameters()[i], loaded.net->parameters()[i])) << i;
}

// A fresh network with a's weights loads a's state from `path` (then removed) and steps as a does.
void expect_loads_and_continues(Net& a, const std::string& path) {
    Net b;
    b.copy_weights_from(a);
    load_optimizer(b.adam, path, torch::kCPU);
    expect_same_state(a, b);
    expect_identical_continuation(a, b);
    fs::remove(path);
}

std::string temp_path(const std::string& name) {
    return (fs::temp_directory_path() / ("igan_optim_" + std::to_string(::getpid()) + "_" + name))
        .string();
}

TEST(OptimizerState, SavedStateLoadsIntoOtherParametersAndContinuesIdentically) {
    Net a;
    a.step(0);
    a.step(1);
    const auto path = temp_path("own.pt");
    save_optimizer(a.adam, path);
    // LibTorch's own loader reads the file too (the format stays torch::save's).
    Net c;
    torch::load(c.adam, path);
    EXPECT_EQ(c.adam.state().size(), a.adam.state().size());
    expect_loads_and_continues(a, path);
}

// LibTorch 1.x names each state by its TensorImpl pointer in hexadecimal ("0x55d0..."); 2.x's own
// loader parses those as 0, so every parameter but one got a null state (the segfault of
// `--device cuda --resume` on stock LibTorch 2.x). Keys are matched as strings here; this file
// is laid out as 1.x writes it, states in another order than the parameters.
TEST(OptimizerState, HexadecimalKeysOfLibTorch1FilesMatchByPosition) {
    Net a;
    a.step(0);
    a.step(1);
    namespace ser = torch::serialize;
    ser::OutputArchive archive, states(archive.compilation_unit()),
        groups(archive.compilation_unit()), group(archive.compilation_unit()),
        options(archive.compilation_unit());
    const auto params = a.net->parameters();
    group.write("params/size", torch::tensor(int64_t(params.size())));
    for (size_t j = 0; j < params.size(); ++j) {
        char key[32];
        std::snprintf(key, sizeof key, "0x55d0c0de%04zx", params.size() - j);
        group.write("params/" + std::to_string(j), c10::IValue(std::string(key)));
        ser::OutputArchive one(archive.compilation_unit());
        a.state(j).serialize(one);
        states.write(key, one);
    }
    a.adam.param_groups()[0].options().serialize(options);
    group.write("options", options);
    groups.write("param_groups/size", torch::tensor(int64_t(1)));
    groups.write("param_groups/0", group);
    archive.write("pytorch_version", c10::IValue("1.5.0"));
    archive.write("state", states);
    archive.write("param_groups", groups);
    const auto path = temp_path("legacy.pt");
    archive.save_to(path);
    expect_loads_and_continues(a, path);
}

TEST(OptimizerState, TorchSaveFilesOfThisLibTorchLoad) {
    Net a;
    a.step(0);
    const auto path = temp_path("torch_save.pt");
    torch::save(a.adam, path);
    expect_loads_and_continues(a, path);
}

TEST(OptimizerState, MismatchesAreErrorsNamingTheFile) {
    Net a;
    a.step(0);
    const auto path = temp_path("mismatch.pt");
    save_optimizer(a.adam, path);
    torch::nn::Sequential other{torch::nn::Linear(4, 5), torch::nn::Linear(5, 2)};
    torch::optim::Adam wrong_shapes(other->parameters());
    try {
        load_optimizer(wrong_shapes, path, torch::kCPU);
        ADD_FAILURE() << "wrong shapes were accepted";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(path + ": optimizer state does not match the model (6 problems): exp_avg of "
                                 "parameter 0 of group 0 is [3, 4], the parameter [5, 4]"),
                  std::string::npos)
            << what;
    }
    torch::nn::Linear one(4, 3);
    torch::optim::Adam fewer(one->parameters());
    EXPECT_THROW(load_optimizer(fewer, path, torch::kCPU), Error);
    EXPECT_THROW(load_optimizer(fewer, temp_path("missing.pt"), torch::kCPU), Error);
    fs::remove(path);
}

}  // namespace
}  // namespace igan
