// One owner per concept: the model file read once (its hash taken while reading).
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
