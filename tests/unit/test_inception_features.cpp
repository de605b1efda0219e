// The second feature network (docs/features.md): InceptionV3 up to mixed5 against TF.js itself
// (tests/data/features/, made by scripts/tfjs-reference.cjs), the Keras graph checks of its
// converter, strict loading, and the fd-incv3m5/kd-incv3m5 metrics of igan eval.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/error.h"
#include "eval/fid.h"
#include "eval/images.h"
#include "eval/incv3m5_features.h"
#include "features/inception_v3.h"
#include "igan/igan.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "io/tfjs.h"

namespace igan {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Largest |igan - TF.js| allowed, relative to the map's largest activation: both run float32
// convolutions that sum in different orders (measured: at most 2.7e-6).
constexpr double kTfjsTolerance = 2e-5;

// TF.js' (H, W, C) as igan's (1, C, H, W).
torch::Tensor from_hwc(const torch::Tensor& t) { return t.permute({2, 0, 1}).unsqueeze(0); }

// Every case of a reference file made by scripts/tfjs-reference.cjs: the stem and each mixed
// block's output against TF.js' where the file holds it.
void expect_matches_tfjs(InceptionV3Mixed5 net, const TensorFile& ref) {
    torch::NoGradGuard no_grad;
    int cases = 0;
    for (; ref.tensors.count("case" + std::to_string(cases) + ".input"); ++cases) {
        const std::string c = "case" + std::to_string(cases) + ".";
        const auto rgb = from_hwc(ref.tensors.at(c + "input")).to(torch::kFloat) / 127.5 - 1;
        auto x = net->stem(((rgb + 1) * 0.5).contiguous(at::MemoryFormat::ChannelsLast));
        std::vector<std::pair<std::string, torch::Tensor>> maps = {{"max_pooling2d_2", x}};
        for (size_t k = 0; k < net->mixed.size(); ++k) {
            x = net->mixed[k](x);
            maps.push_back({"mixed" + std::to_string(k), x});
        }
        EXPECT_TRUE(test::all_close(net->forward(rgb), x, 0.0));
        for (const auto& [name, map] : maps) {
            if (!ref.tensors.count(c + name)) continue;
            const auto expected = from_hwc(ref.tensors.at(c + name));
            const double peak = expected.abs().max().item<double>();
            EXPECT_GT(peak, 1.0) << c << name;
            EXPECT_TRUE(test::all_close(map, expected, kTfjsTolerance * peak)) << c << name;
        }
    }
    EXPECT_GE(cases, 2);
}

// scripts/tfjs-reference.cjs's formulaByte.
uint8_t formula_byte(uint32_t t, uint32_t i) {
    uint32_t h = (i ^ ((t + 1) * 0x9e3779b1u)) * 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return uint8_t(h >> 24);
}

// A TF.js model (model.json and one shard) in `dir` whose weights are formula bytes.
void write_formula_model(const std::string& dir, const Json& topology, const Json& specs) {
    std::string shard;
    for (size_t t = 0; t < specs.size(); ++t) {
        int64_t n = 1;
        for (const auto& d : specs[t]["shape"]) n *= d.get<int64_t>();
        for (int64_t i = 0; i < n; ++i) shard += char(formula_byte(uint32_t(t), uint32_t(i)));
    }
    std::ofstream(dir + "/w.bin", std::ios::binary)
        .write(shard.data(), std::streamsize(shard.size()));
    const Json model = {{"format", "layers-model"},
                        {"modelTopology", topology},
                        {"weightsManifest", {{{"paths", {"w.bin"}}, {"weights", specs}}}}};
    std::ofstream(dir + "/model.json") << model.dump();
}

struct FormulaFixture {
    TensorFile ref;
    Json topology, specs;
};

FormulaFixture formula_fixture() {
    FormulaFixture f;
    f.ref = read_safetensors(test::data_path("features/incv3m5-tfjs-formula.safetensors"));
    f.topology = Json::parse(f.ref.metadata.at("topology"));
    f.specs = Json::parse(f.ref.metadata.at("weights"));
    return f;
}

TensorFile convert(const std::string& dir) {
    return inception_v3_mixed5_from_tfjs(read_tfjs_model(dir), "test", dir);
}

// nsfwjs' topology (cut after mixed5 by the script) with weights TF.js and igan both derive
// from a formula: converter and network against TF.js without the package's weights.
TEST(InceptionV3Mixed5, MatchesTfjsOnFormulaWeights) {
    test::TempDir dir;
    const FormulaFixture f = formula_fixture();
    write_formula_model(dir.str(), f.topology, f.specs);
    const TensorFile file = convert(dir.str());
    EXPECT_EQ(file.metadata.at("igan.arch"), kInceptionV3Mixed5Arch);
    expect_matches_tfjs(inception_v3_mixed5_from_tensors(file.tensors, "test"), f.ref);
}

// The converted nsfwjs weights against TF.js on them: run where scripts/fetch-features.sh has
// made the weights; IGAN_INCV3_REFERENCE may name another reference file of the script's.
TEST(InceptionV3Mixed5, MatchesTfjsOnNsfwjsWeights) {
    const std::string weights =
        test::data_path("../../data-cache/features/inceptionv3-mixed5.safetensors");
    if (!fs::exists(weights)) GTEST_SKIP() << weights << " absent (scripts/fetch-features.sh)";
    const char* env = std::getenv("IGAN_INCV3_REFERENCE");
    const TensorFile ref =
        read_safetensors(env ? env : test::data_path("features/incv3m5-tfjs.safetensors"));
    expect_matches_tfjs(load_inception_v3_mixed5(weights), ref);
}

// A weight entry as the script writes them (uint8, one formula byte an element).
Json uint8_spec(const std::string& name, const std::vector<int64_t>& shape) {
    return {{"name", name},
            {"shape", shape},
            {"dtype", "float32"},
            {"quantization", {{"dtype", "uint8"}, {"min", 0.0}, {"scale", 0.01}}}};
}

Json& layer(Json& topology, const std::string& name) {
    for (auto& l : topology["model_config"]["config"]["layers"])
        if (l["config"]["name"] == name) return l;
    throw std::runtime_error("no layer " + name);
}

TEST(InceptionV3Mixed5, ConverterChecksEveryLayerAgainstTheModule) {
    test::TempDir dir;
    FormulaFixture f = formula_fixture();
    // A layer after mixed5 and its weights are skipped.
    f.topology["model_config"]["config"]["layers"].push_back(
        {{"class_name", "Dense"},
         {"config", {{"name", "dense_9"}}},
         {"inbound_nodes", {{{"mixed5", 0, 0, Json::object()}}}}});
    f.specs.push_back(uint8_spec("dense_9/kernel", {768, 5}));
    write_formula_model(dir.str(), f.topology, f.specs);
    EXPECT_NO_THROW(convert(dir.str()));

    layer(f.topology, "conv2d_8")["config"]["padding"] = "valid";              // mixed0's 5x5
    layer(f.topology, "activation_40")["config"]["activation"] = "linear";     // mixed4's pool
    layer(f.topology, "average_pooling2d_1")["config"]["pool_size"] = {2, 2};  // mixed0's pool
    auto& inbound = layer(f.topology, "mixed1")["inbound_nodes"][0];           // branch order
    std::swap(inbound[0], inbound[1]);
    for (size_t t = 0; t < f.specs.size(); ++t)
        if (f.specs[t]["name"] == "batch_normalization_5/moving_mean")
            f.specs.erase(f.specs.begin() + std::ptrdiff_t(t));
    f.specs.push_back(uint8_spec("batch_normalization_5/gamma", {192}));  // scale is false
    f.specs.push_back(uint8_spec("mystery/kernel", {2}));
    write_formula_model(dir.str(), f.topology, f.specs);
    const std::string msg = test::error_of([&] { convert(dir.str()); });
    for (const char* needle :
         {"not a Keras InceptionV3 up to mixed5", "conv2d_8 padding \"valid\", expected \"same\"",
          "activation_40 activation \"linear\", expected \"relu\"",
          "average_pooling2d_1 pool_size [2,2], expected [3,3]",
          "mixed1 branch 0 starts at activation_14, not at mixed0",
          "missing batch_normalization_5/moving_mean", "unexpected batch_normalization_5/gamma",
          "unexpected mystery/kernel"})
        EXPECT_NE(msg.find(needle), std::string::npos) << needle << "\n" << msg;
    EXPECT_EQ(msg.find("dense_9"), std::string::npos) << msg;
}

// Through the loader MobileNetV2.LoadingIsStrict checks with every kind of problem; a missing
// file names the script that makes it.
TEST(InceptionV3Mixed5, LoadingIsStrict) {
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& p : InceptionV3Mixed5()->named_parameters()) tensors[p.key()] = p.value();
    tensors.erase("mixed5.branch_pool.bias");
    std::string msg =
        test::error_of([&] { inception_v3_mixed5_from_tensors(tensors, "file.safetensors"); });
    EXPECT_NE(msg.find("not InceptionV3 mixed5 feature weights (1 problems): missing "
                       "mixed5.branch_pool.bias"),
              std::string::npos)
        << msg;
    msg = test::error_of([] { load_inception_v3_mixed5("missing.safetensors"); });
    EXPECT_NE(msg.find("scripts/fetch-features.sh"), std::string::npos) << msg;
}

// Smooth random images in [-1, 1].
torch::Tensor smooth_images(int64_t n, int64_t size, uint64_t seed) {
    torch::manual_seed(seed);
    return torch::tanh(resize_square(torch::randn({n, 3, 5, 5}) * 1.5, size));
}

TEST(InceptionV3Mixed5, ShapesGradientsAndDescriptors) {
    torch::manual_seed(4);
    InceptionV3Mixed5 net;  // random weights
    for (const auto& p : net->parameters()) EXPECT_FALSE(p.requires_grad());
    const auto rgb = torch::zeros({2, 3, 43, 80}, torch::requires_grad());
    const auto map = net->forward(rgb);
    EXPECT_EQ(map.sizes().vec(), (std::vector<int64_t>{2, 768, 1, 3}));
    map.sum().backward();
    ASSERT_TRUE(rgb.grad().defined());
    EXPECT_THROW(net->forward(torch::zeros({1, 3, 42, 80})), c10::Error);

    const auto images = smooth_images(2, 30, 1);
    const auto d = incv3m5_descriptors(net, images, 47);
    EXPECT_TRUE(test::all_close(d, net->forward(resize_square(images, 47)).mean({2, 3}), 1e-6));
}

// igan eval's fd-incv3m5/kd-incv3m5 are the distances of incv3m5_descriptors of the images as
// run_eval prepares them (two 24-px images a set here: each costs a 299-px forward); identical
// sets (the floor row, here the real folder again) score 0.
TEST(InceptionV3Mixed5, EvalMetricsAreDistancesOfTheDescriptors) {
    test::TempDir dir;
    torch::manual_seed(4);
    InceptionV3Mixed5 net;
    TensorFile weights;
    for (const auto& p : net->named_parameters()) weights.tensors[p.key()] = p.value();
    weights.metadata["igan.arch"] = kInceptionV3Mixed5Arch;
    write_safetensors(dir / "incv3.safetensors", weights);
    const std::vector<std::string> folders = {dir / "a", dir / "b"};
    torch::Tensor sets[2];
    for (int f = 0; f < 2; ++f) {
        fs::create_directories(folders[size_t(f)]);
        const auto images = ((smooth_images(2, 24, 10 + uint64_t(f)) + 1) * 127.5).round();
        std::vector<torch::Tensor> loaded;
        for (int i = 0; i < 2; ++i) {
            const std::string path = folders[size_t(f)] + "/" + std::to_string(i) + ".png";
            const auto rgb = images[i].permute({1, 2, 0}).to(torch::kByte).contiguous();
            PngWriter png(path, 24, 24, {});
            png.write_rows(rgb.data_ptr<uint8_t>(), 24);
            png.finish();
            loaded.push_back(load_image_tensor(path));
        }
        sets[f] = torch::stack(loaded);
    }
    EvalRequest r;
    r.fake = folders[0];
    r.real = folders[1];
    r.size = 24;
    r.crops_per_image = 0;
    r.bootstrap = 2;  // each draw's Fréchet distance costs two 768 x 768 eigendecompositions
    r.metrics = {"fd-incv3m5", "kd-incv3m5"};
    r.incv3_features = dir / "incv3.safetensors";
    r.floor = folders[1];  // the real set again: identical sets
    const auto j = Json::parse(run_eval(r));
    const auto da = incv3m5_descriptors(net, sets[0]), db = incv3m5_descriptors(net, sets[1]);
    const double fd = frechet_distance(gaussian_stats(da), gaussian_stats(db));
    EXPECT_GT(fd, 0);
    EXPECT_NEAR(j["fd-incv3m5"].get<double>(), fd, 1e-6 * fd);
    EXPECT_GT(j["fd-incv3m5_std"].get<double>(), 0);
    const double kd = kernel_inception_distance(da, db).mean;
    EXPECT_NEAR(j["kd-incv3m5"].get<double>(), kd, 1e-6 * std::abs(kd) + 1e-9);
    EXPECT_GT(j["kd-incv3m5_std"].get<double>(), 0);
    // The same images brightened: further from themselves the more they are shifted (at 75 px,
    // to stay fast).
    const auto small = gaussian_stats(incv3m5_descriptors(net, sets[0], 75));
    auto shifted = [&](double by) {
        return frechet_distance(small, gaussian_stats(incv3m5_descriptors(net, sets[0] + by, 75)));
    };
    const double near = shifted(0.1), far = shifted(0.4);
    EXPECT_GT(near, 0);
    EXPECT_GT(far, near);
    EXPECT_LT(std::abs(j["floor"]["fd-incv3m5"].get<double>()), 1e-6 * fd);
    EXPECT_LT(std::abs(j["floor"]["kd-incv3m5"].get<double>()), 1e-6 * std::abs(kd) + 1e-9);
}

}  // namespace
}  // namespace igan
