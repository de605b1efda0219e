// One owner per concept: Engine::prepare (the one check and plan of a request, its job used by
// every render path) and the model file read once (its hash taken while reading).
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/test_util.h"
#include "igan/igan.h"
#include "io/hash.h"
#include "io/safetensors.h"

namespace igan {
namespace {

// A folder for the process (a TempDir is named after the test that makes it, and these files
// outlive tests), removed at exit.
const std::string& model_dir() {
    struct Dir {
        std::string path;
        Dir() {
            char name[] = "/tmp/igan-prepare-test-XXXXXX";
            if (!mkdtemp(name)) throw std::runtime_error("mkdtemp");
            path = name;
        }
        ~Dir() {
            std::error_code ignored;
            std::filesystem::remove_all(path, ignored);
        }
    };
    static const Dir dir;
    return dir.path;
}

const std::string& tiny_path() {
    static const std::string path = [] {
        InitRequest r;
        r.config = "tiny";
        r.seed = 11;
        r.out = model_dir() + "/tiny.safetensors";
        init_model(r);
        return r.out;
    }();
    return path;
}

GenerateRequest region(int64_t w, int64_t h) {
    GenerateRequest r;
    r.seed = 4;
    r.x = -20;
    r.y = -h / 2;
    r.width = w;
    r.height = h;
    r.tile = 32;
    return r;
}

TEST(RenderJob, RendersAsTheRequestAndAgain) {
    const Engine engine(tiny_path());
    const auto r = region(70, 40);
    const RenderJob job = engine.prepare(r, false);
    EXPECT_EQ(job.tiles(), 3 * 2);
    EXPECT_EQ(job.record_json(), engine.record(r));
    const auto first = engine.render_rgb(job);
    EXPECT_EQ(first, engine.render_rgb(r));
    EXPECT_EQ(first, engine.render_rgb(job));  // a job renders again, the same
}

TEST(RenderJob, ShardsOfOnePlanCoverItExactly) {
    const Engine engine(tiny_path());
    const test::TempDir dir;
    auto r = region(50, 100);
    r.out = dir / "whole.png";
    const RenderJob job = engine.prepare(r, true);
    std::vector<std::string> parts;
    int64_t tiles = 0;
    for (int64_t i = 0; i < 3; ++i) {
        auto part = r;
        part.out = dir / ("part" + std::to_string(i));
        const auto res = engine.generate_shard(engine.prepare(part, true), i, 3);
        tiles += res.tiles;
        parts.push_back(part.out);
    }
    EXPECT_EQ(tiles, job.tiles());
    engine.generate(job);
    merge_parts(parts, dir / "merged.png");
    std::ifstream a(dir / "whole.png", std::ios::binary), b(dir / "merged.png", std::ios::binary);
    const std::string whole((std::istreambuf_iterator<char>(a)), {});
    const std::string merged((std::istreambuf_iterator<char>(b)), {});
    EXPECT_FALSE(whole.empty());
    EXPECT_EQ(whole, merged);
}

// The model's checks come from prepare, once, with the messages validate gave.
TEST(RenderJob, RefusesWhatTheModelCannotRender) {
    const Engine engine(tiny_path());
    auto r = region(64, 32);
    r.cyclic_width = 33;
    const auto cyclic = test::error_of([&] { engine.prepare(r, false); });
    EXPECT_NE(cyclic.find("cyclic width 33 must be a positive multiple of"), std::string::npos)
        << cyclic;
    EXPECT_THROW(engine.prepare(r, false), UsageError);
    r.cyclic_width = 0;
    r.level = -7;
    const auto level = test::error_of([&] { engine.prepare(r, false); });
    EXPECT_NE(level.find("level -7: this model renders levels 0"), std::string::npos) << level;
    r.level = 0;
    r.width = 1 << 20;  // beyond the cap without --force: validate_request's check
    EXPECT_THROW(engine.prepare(r, false), UsageError);
    EXPECT_NO_THROW(engine.prepare(validate_request(region(64, 32), false)));
    const Engine other(tiny_path());
    const auto job = other.prepare(region(8, 8), false);
    EXPECT_THROW(engine.render_rgb(job), Error);
}

// Files whose tensors are stored out of name order are hashed in file order all the same.
TEST(ModelFile, ReadingHashesTheWholeFileOnce) {
    std::string sha;
    read_safetensors(tiny_path(), &sha);
    EXPECT_EQ(sha, sha256_file(tiny_path()));
    EXPECT_EQ(Engine(tiny_path()).summary().sha256, sha);
    std::string header =
        R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
        R"("a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char((header.size() >> (8 * i)) & 0xff);
    const float values[3] = {1.5f, -2.f, 3.f};
    bytes += header + std::string(reinterpret_cast<const char*>(values), sizeof values);
    const std::string path = model_dir() + "/unordered.safetensors";
    std::ofstream(path, std::ios::binary) << bytes;
    const auto file = read_safetensors(path, &sha);
    EXPECT_EQ(sha, sha256_bytes(bytes.data(), bytes.size()));
    EXPECT_EQ(file.tensors.at("b").item<float>(), 1.5f);
    EXPECT_EQ(file.tensors.at("a")[1].item<float>(), 3.f);
}

}  // namespace
}  // namespace igan
