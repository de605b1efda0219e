// The pretrained feature network (docs/features.md): the TF.js reader on small models written
// here (quantised shards, nsfwjs-style bundles, broken variants), the Keras MobileNetV2 mapping
// against an explicit unfolded computation, strict loading, and the network's contract.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "core/error.h"
#include "igan/igan.h"
#include "eval/fid.h"
#include "eval/images.h"
#include "eval/mnv2_features.h"
#include "features/mobilenet_v2.h"
#include "features/perceptual.h"
#include "io/png.h"
#include "io/tfjs.h"

namespace igan {
namespace {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;
using Json = nlohmann::json;

class TempDir {
public:
    TempDir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = fs::temp_directory_path() /
                (std::string("igan_features_") + info->name() + "_" + std::to_string(::getpid()));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() { fs::remove_all(path_); }
    std::string operator/(const std::string& name) const { return (path_ / name).string(); }
    std::string str() const { return path_.string(); }

private:
    fs::path path_;
};

void write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string base64(const std::string& bytes) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v =
            uint8_t(bytes[i]) << 16 | uint8_t(bytes[i + 1]) << 8 | uint8_t(bytes[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out += abc[(v >> s) & 63];
    }
    if (i < bytes.size()) {
        const uint32_t v =
            uint8_t(bytes[i]) << 16 | (i + 1 < bytes.size() ? uint8_t(bytes[i + 1]) << 8 : 0);
        out += abc[(v >> 18) & 63];
        out += abc[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? abc[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

struct Fixture {
    Json manifest_weights = Json::array();
    std::string shard;
    std::map<std::string, torch::Tensor> expected;  // what a reader must return
};

// Appends `value` to the shard, stored as `dtype` (uint8 with min/scale as tensorflowjs'
// quantiser, float16 or float32), and records the value a reader must return.
void add_weight(Fixture& f, const std::string& name, const torch::Tensor& value,
                const std::string& dtype) {
    Json spec = {{"name", name}, {"shape", value.sizes().vec()}, {"dtype", "float32"}};
    const auto v = value.contiguous();
    if (dtype == "uint8") {
        const double lo = v.min().item<double>(), hi = v.max().item<double>();
        const double scale = hi > lo ? (hi - lo) / 255 : 1.0;
        const auto q = ((v.to(torch::kDouble) - lo) / scale).round().clamp(0, 255).to(torch::kByte);
        f.shard.append((const char*)q.data_ptr(), size_t(q.numel()));
        spec["quantization"] = {{"dtype", "uint8"}, {"min", lo}, {"scale", scale}};
        f.expected[name] = (q.to(torch::kDouble) * scale + lo).to(torch::kFloat);
    } else if (dtype == "float16") {
        const auto h = v.to(torch::kHalf);
        f.shard.append((const char*)h.data_ptr(), size_t(h.numel()) * 2);
        spec["quantization"] = {{"dtype", "float16"}};
        f.expected[name] = h.to(torch::kFloat);
    } else {
        f.shard.append((const char*)v.data_ptr(), size_t(v.numel()) * 4);
        f.expected[name] = v.clone();
    }
    f.manifest_weights.push_back(spec);
}

// model.json plus one binary shard, split in two files to exercise concatenation.
void write_json_model(const std::string& dir, const Fixture& f, const Json& topology) {
    const size_t half = f.shard.size() / 2;
    write(dir + "/a.bin", f.shard.substr(0, half));
    write(dir + "/b.bin", f.shard.substr(half));
    const Json model = {
        {"modelTopology", topology},
        {"weightsManifest", {{{"paths", {"a.bin", "b.bin"}}, {"weights", f.manifest_weights}}}}};
    write(dir + "/model.json", model.dump());
}

// The same as nsfwjs ships it: browserify modules exporting a JS literal and a base64 string.
void write_bundle_model(const std::string& dir, const Fixture& f, const Json& topology) {
    const std::string prefix =
        "!function(e){module.exports=e()}(function(){return function e(a,n,i){}({1:[function(e,a,"
        "n){a.exports=";
    const std::string suffix = "},{}]},{},[1])(1)});";
    write(dir + "/group1-shard1of1.min.js", prefix + '"' + base64(f.shard) + '"' + suffix);
    Json model = {
        {"modelTopology", topology},
        {"weightsManifest", {{{"paths", {"group1-shard1of1"}}, {"weights", f.manifest_weights}}}}};
    // Minified JavaScript: bare keys, !0/!1 for booleans, no leading zero.
    std::string text = model.dump();
    for (const std::string key : {"modelTopology", "weightsManifest", "paths", "weights", "name",
                                  "shape", "dtype", "quantization", "min", "scale"}) {
        for (size_t at; (at = text.find('"' + key + "\":")) != std::string::npos;)
            text.replace(at, key.size() + 2, key);
    }
    for (size_t at; (at = text.find("true")) != std::string::npos;) text.replace(at, 4, "!0");
    for (size_t at; (at = text.find(":0.")) != std::string::npos;) text.replace(at, 3, ":.");
    for (size_t at; (at = text.find(":-0.")) != std::string::npos;) text.replace(at, 4, ":-.");
    write(dir + "/model.min.js", prefix + text + suffix);
}

Json small_topology() {
    return {{"model_config", {{"class_name", "Model"}, {"config", {{"layers", Json::array()}}}}},
            {"flag", true},
            {"epsilon", 0.001}};
}

Fixture small_fixture() {
    torch::manual_seed(5);
    Fixture f;
    add_weight(f, "conv/kernel", torch::randn({3, 3, 2, 4}), "uint8");
    add_weight(f, "dense/bias", torch::randn({5}), "float32");
    add_weight(f, "dense/kernel", torch::randn({7, 5}), "float16");
    add_weight(f, "constant/kernel", torch::full({3}, 0.25), "uint8");
    return f;
}

void expect_weights(const TfjsModel& model, const Fixture& f) {
    ASSERT_EQ(model.weights.size(), f.expected.size());
    for (const auto& w : model.weights) {
        SCOPED_TRACE(w.name);
        ASSERT_TRUE(f.expected.count(w.name));
        EXPECT_TRUE(test::all_close(w.value, f.expected.at(w.name), 0.0));
    }
}

TEST(Tfjs, DequantisesShardsToTheQuantisedValues) {
    TempDir dir;
    const Fixture f = small_fixture();
    write_json_model(dir.str(), f, small_topology());
    const TfjsModel model = read_tfjs_model(dir.str());
    EXPECT_EQ(model.format, "layers-model");
    EXPECT_EQ(model.weights[0].stored_dtype, "uint8");
    EXPECT_EQ(model.weights[2].stored_dtype, "float16");
    expect_weights(model, f);
    // uint8 quantisation loses at most half a step.
    const auto& kernel = model.weights[0].value;
    const double step = (kernel.max() - kernel.min()).item<double>() / 255;
    torch::manual_seed(5);
    EXPECT_TRUE(test::all_close(kernel, torch::randn({3, 3, 2, 4}), step / 2 + 1e-6));
}

TEST(Tfjs, ReadsNsfwjsBundlesLikeModelJson) {
    TempDir dir;
    const Fixture f = small_fixture();
    write_bundle_model(dir.str(), f, small_topology());
    const TfjsModel model = read_tfjs_model(dir / "model.min.js");
    expect_weights(model, f);
    EXPECT_EQ(Json::parse(model.topology_json), small_topology());
}

TEST(Tfjs, BrokenFilesFailWithTheirProblem) {
    TempDir dir;
    Fixture f = small_fixture();
    auto expect_error = [&](const std::string& needle) {
        try {
            read_tfjs_model(dir.str());
            ADD_FAILURE() << "no error; expected one mentioning " << needle;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    const std::string good = f.shard;
    f.shard += "xx";
    write_json_model(dir.str(), f, small_topology());
    expect_error("2 bytes more than its weights need");
    f.shard = good.substr(0, good.size() - 3);
    write_json_model(dir.str(), f, small_topology());
    expect_error("weight constant/kernel needs 3 bytes");
    f.shard = good;
    write_json_model(dir.str(), f, small_topology());
    fs::remove(dir / "b.bin");
    expect_error("weight shard 'b.bin' not found");
    f.manifest_weights[1]["quantization"] = {{"dtype", "int4"}};
    write_json_model(dir.str(), f, small_topology());
    expect_error("quantisation dtype 'int4' is not supported");
    f.manifest_weights[1]["quantization"] = {{"dtype", "uint8"}, {"min", "zero"}, {"scale", 1}};
    write_json_model(dir.str(), f, small_topology());
    expect_error("quantisation needs scale and min");
    f.manifest_weights[1]["dtype"] = 32;
    write_json_model(dir.str(), f, small_topology());
    expect_error("malformed weight entry");
    fs::remove(dir / "model.json");
    const std::string bad = "!function(){a.exports={modelTopology:window.x}}";
    write(dir / "model.min.js", bad);
    expect_error("unsupported value 'window'");
}

// ---------------------------------------------------------------------------------------------
// A synthetic Keras MobileNetV2 (blocks 0-10 plus one later layer and the classifier, which the
// mapping must skip), random weights, uint8-quantised like nsfwjs'.

struct KerasBlock {
    int64_t t, c, s;
};
const KerasBlock kBlocks[] = {{1, 16, 1}, {6, 24, 2}, {6, 24, 1}, {6, 32, 2},
                              {6, 32, 1}, {6, 32, 1}, {6, 64, 2}, {6, 64, 1},
                              {6, 64, 1}, {6, 64, 1}, {6, 96, 1}};

void add_conv_bn(Fixture& f, Json& layers, const std::string& conv, const std::string& bn,
                 std::vector<int64_t> kernel_shape, int64_t out, bool depthwise) {
    const double fan_in = double(kernel_shape[0] * kernel_shape[1] * kernel_shape[2]);
    add_weight(f, conv + (depthwise ? "/depthwise_kernel" : "/kernel"),
               torch::randn(kernel_shape) / std::sqrt(depthwise ? 9.0 : fan_in), "uint8");
    add_weight(f, bn + "/gamma", torch::rand({out}) + 0.5, "uint8");
    add_weight(f, bn + "/beta", torch::randn({out}) * 0.1, "uint8");
    add_weight(f, bn + "/moving_mean", torch::randn({out}) * 0.1, "uint8");
    add_weight(f, bn + "/moving_variance", torch::rand({out}) + 0.5, "uint8");
    layers.push_back(
        {{"class_name", "BatchNormalization"}, {"config", {{"name", bn}, {"epsilon", 0.001}}}});
}

struct KerasModel {
    Fixture f;
    Json topology;
};

KerasModel keras_mobilenet_v2() {
    torch::manual_seed(11);
    KerasModel m;
    Json layers = Json::array();
    add_conv_bn(m.f, layers, "Conv1", "bn_Conv1", {3, 3, 3, 32}, 32, false);
    int64_t in = 32;
    for (int i = 0; i < 11; ++i) {
        const std::string k = i == 0 ? "expanded_conv_" : "block_" + std::to_string(i) + "_";
        const int64_t hidden = in * kBlocks[i].t, out = kBlocks[i].c;
        if (kBlocks[i].t != 1)
            add_conv_bn(m.f, layers, k + "expand", k + "expand_BN", {1, 1, in, hidden}, hidden,
                        false);
        add_conv_bn(m.f, layers, k + "depthwise", k + "depthwise_BN", {3, 3, hidden, 1}, hidden,
                    true);
        add_conv_bn(m.f, layers, k + "project", k + "project_BN", {1, 1, hidden, out}, out, false);
        in = out;
    }
    add_weight(m.f, "block_11_expand/kernel", torch::randn({1, 1, 96, 576}), "uint8");
    add_weight(m.f, "dense_3/bias", torch::randn({5}), "float32");
    m.topology = {{"model_config", {{"config", {{"layers", layers}}}}}};
    return m;
}

// Keras BN in inference: gamma (x - mean) / sqrt(var + eps) + beta.
torch::Tensor keras_bn(const Fixture& f, const std::string& bn, const torch::Tensor& x) {
    auto v = [&](const char* p) { return f.expected.at(bn + "/" + p).view({1, -1, 1, 1}); };
    return v("gamma") * (x - v("moving_mean")) / torch::sqrt(v("moving_variance") + 1e-3) +
           v("beta");
}

TEST(MobileNetV2, ConvertedWeightsMatchTheKerasComputation) {
    TempDir dir;
    const KerasModel m = keras_mobilenet_v2();
    write_json_model(dir.str(), m.f, m.topology);
    const TensorFile file = mobilenet_v2_from_tfjs(read_tfjs_model(dir.str()), "test", dir.str());
    EXPECT_EQ(file.metadata.at("igan.arch"), kMobileNetV2Arch);
    auto net = mobilenet_v2_from_tensors(file.tensors, "test");

    torch::manual_seed(2);
    const auto rgb = torch::rand({2, 3, 37, 40}) * 2 - 1;
    const auto features = net->forward(rgb);
    ASSERT_EQ(features.size(), 4u);
    // Stem and block 0, the Keras way: TF layouts, unfolded batch norm, bottom/right padding.
    const auto& e = m.f.expected;
    auto x = F::pad((rgb + 1) / 2, F::PadFuncOptions({0, 1, 0, 1}));
    x = F::conv2d(x, e.at("Conv1/kernel").permute({3, 2, 0, 1}), F::Conv2dFuncOptions().stride(2));
    x = keras_bn(m.f, "bn_Conv1", x).clamp(0, 6);
    x = F::conv2d(x, e.at("expanded_conv_depthwise/depthwise_kernel").permute({2, 3, 0, 1}),
                  F::Conv2dFuncOptions().padding(1).groups(32));
    x = keras_bn(m.f, "expanded_conv_depthwise_BN", x).clamp(0, 6);
    x = F::conv2d(x, e.at("expanded_conv_project/kernel").permute({3, 2, 0, 1}));
    x = keras_bn(m.f, "expanded_conv_project_BN", x);
    EXPECT_TRUE(test::all_close(features[0], x, 1e-5, 1e-5));
}

TEST(MobileNetV2, FeatureShapesAndGradients) {
    MobileNetV2Features net;
    for (const auto& p : net->parameters()) EXPECT_FALSE(p.requires_grad());
    const auto rgb = torch::zeros({2, 3, 101, 53}, torch::requires_grad());
    const auto features = net->forward(rgb);
    const std::vector<std::vector<int64_t>> expected = {
        {2, 16, 50, 26}, {2, 24, 25, 13}, {2, 32, 12, 6}, {2, 96, 6, 3}};
    ASSERT_EQ(features.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(features[i].sizes().vec(), expected[i]);
    features[3].sum().backward();
    ASSERT_TRUE(rgb.grad().defined());
}

TEST(MobileNetV2, LoadingIsStrict) {
    TempDir dir;
    KerasModel m = keras_mobilenet_v2();
    // A wrong Keras shape and a stray layer: both named in one error.
    auto& specs = m.f.manifest_weights;
    for (auto& s : specs)
        if (s["name"] == "block_3_project/kernel") s["name"] = "block_3_project/kernelx";
    specs.push_back({{"name", "mystery/kernel"}, {"shape", {0}}, {"dtype", "float32"}});
    write_json_model(dir.str(), m.f, m.topology);
    try {
        mobilenet_v2_from_tfjs(read_tfjs_model(dir.str()), "test", "keras");
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("missing block_3_project/kernel"), std::string::npos) << msg;
        EXPECT_NE(msg.find("unexpected block_3_project/kernelx"), std::string::npos) << msg;
        EXPECT_NE(msg.find("unexpected mystery/kernel"), std::string::npos) << msg;
        EXPECT_EQ(msg.find("block_11"), std::string::npos) << msg;
    }
    // igan's own names: a wrong shape, a missing and an unexpected tensor, all listed.
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& p : MobileNetV2Features()->named_parameters()) tensors[p.key()] = p.value();
    tensors["blocks.4.expand.weight"] = torch::zeros({192, 32, 3, 3});
    tensors.erase("stem.bias");
    tensors["head.weight"] = torch::zeros({1});
    try {
        mobilenet_v2_from_tensors(tensors, "file.safetensors");
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("3 problems"), std::string::npos) << msg;
        EXPECT_NE(msg.find("wrong shape for blocks.4.expand.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("missing stem.bias"), std::string::npos) << msg;
        EXPECT_NE(msg.find("unexpected head.weight"), std::string::npos) << msg;
    }
}

// Smooth random images in [-1, 1]: a low-resolution field upsampled.
torch::Tensor smooth_images(int64_t n, int64_t size, uint64_t seed) {
    torch::manual_seed(seed);
    return torch::tanh(
        F::interpolate(torch::randn({n, 3, 6, 6}) * 1.5, F::InterpolateFuncOptions()
                                                             .size(std::vector<int64_t>{size, size})
                                                             .mode(torch::kBicubic)
                                                             .align_corners(false)));
}

TEST(MobileNetV2, DescriptorsArePooledMapsOfTheResizedImages) {
    torch::manual_seed(4);
    MobileNetV2Features net;  // random weights
    const auto images = smooth_images(3, 40, 1);
    const auto d = mnv2_descriptors(net, images, 64);
    ASSERT_EQ(d.sizes().vec(), (std::vector<int64_t>{3, kMnv2Descriptor}));
    const auto resized = F::interpolate(images, F::InterpolateFuncOptions()
                                                    .size(std::vector<int64_t>{64, 64})
                                                    .mode(torch::kBilinear)
                                                    .align_corners(false));
    const auto maps = net->forward(resized);
    EXPECT_TRUE(test::all_close(d.slice(1, 0, 16), maps[0].mean({2, 3}), 1e-6));
    EXPECT_TRUE(test::all_close(d.slice(1, 72), maps[3].mean({2, 3}), 1e-6));
}

TEST(Perceptual, ZeroForIdenticalSymmetricGrowsWithNoise) {
    torch::manual_seed(4);
    MobileNetV2Features net;
    const auto a = smooth_images(2, 48, 2);
    EXPECT_TRUE(test::all_close(perceptual_distance(net, a, a), torch::zeros({2}), 1e-7));
    torch::manual_seed(9);
    const auto noise = torch::randn_like(a);
    double previous = 0;
    for (double sigma : {0.02, 0.1, 0.3}) {
        const auto b = (a + sigma * noise).clamp(-1, 1);
        const auto ab = perceptual_distance(net, a, b), ba = perceptual_distance(net, b, a);
        EXPECT_TRUE(test::all_close(ab, ba, 1e-6));
        EXPECT_GT(ab.min().item<double>(), previous) << "sigma " << sigma;
        previous = ab.max().item<double>();
    }
    // Differentiable in the images, the network stays frozen.
    const auto b = a.detach().clone().requires_grad_(true);
    perceptual_distance(net, a + 0.1 * noise, b).sum().backward();
    ASSERT_TRUE(b.grad().defined());
    EXPECT_GT(b.grad().abs().sum().item<double>(), 0);
}

// igan eval's fd-mnv2 is the Fréchet distance of mnv2_descriptors of the images as run_eval
// prepares them (here: centred squares resized to 24 px); a missing weight file names the script.
TEST(MobileNetV2, EvalMetricsAreDistancesOfTheDescriptors) {
    TempDir dir;
    torch::manual_seed(4);
    MobileNetV2Features net;
    TensorFile weights;
    for (const auto& p : net->named_parameters()) weights.tensors[p.key()] = p.value();
    weights.metadata["igan.arch"] = kMobileNetV2Arch;
    write_safetensors(dir / "mnv2.safetensors", weights);
    std::vector<std::string> folders = {dir / "a", dir / "b"};
    std::vector<torch::Tensor> images[2];
    for (int f = 0; f < 2; ++f) {
        fs::create_directories(folders[f]);
        for (int i = 0; i < 3; ++i) {
            const std::string path = folders[f] + "/" + std::to_string(i) + ".png";
            std::vector<uint8_t> rgb(30 * 26 * 3);
            for (size_t k = 0; k < rgb.size(); ++k) rgb[k] = uint8_t((k * (7 + f * 5 + i)) % 251);
            PngWriter png(path, 30, 26, {});
            png.write_rows(rgb.data(), 26);
            png.finish();
            images[f].push_back(center_crop_resize(load_image_tensor(path), 24));
        }
    }
    EvalRequest r;
    r.fake = folders[0];
    r.real = folders[1];
    r.size = 24;
    r.crops_per_image = 0;
    r.bootstrap = 0;
    r.metrics = {"fd-mnv2", "kd-mnv2"};
    r.features = dir / "mnv2.safetensors";
    const auto j = Json::parse(run_eval(r));
    const auto da = mnv2_descriptors(net, torch::stack(images[0]));
    const auto db = mnv2_descriptors(net, torch::stack(images[1]));
    const double fd = frechet_distance(gaussian_stats(da), gaussian_stats(db));
    EXPECT_GT(fd, 0);
    EXPECT_NEAR(j["fd-mnv2"].get<double>(), fd, 1e-6 * fd);
    const double kd = kernel_inception_distance(da, db).mean;
    EXPECT_NEAR(j["kd-mnv2"].get<double>(), kd, 1e-6 * std::abs(kd) + 1e-9);
    r.fake = folders[1];
    EXPECT_LT(std::abs(Json::parse(run_eval(r))["fd-mnv2"].get<double>()), 1e-6 * fd);
    r.features = dir / "missing.safetensors";
    try {
        run_eval(r);
        ADD_FAILURE() << "no error for a missing feature file";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("scripts/fetch-features.sh"), std::string::npos);
    }
}

}  // namespace
}  // namespace igan
