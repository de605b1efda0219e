// Unit tests for src/io: safetensors, PNG/JPEG, hashing and atomic files. Every fixture is
// generated here, including deliberately broken ones.
#include <gtest/gtest.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include "common/test_util.h"
#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hash.h"
#include "io/png.h"
#include "io/safetensors.h"

namespace igan {
namespace {

namespace fs = std::filesystem;

using test::error_of;

void write_bytes(const std::string& path, const std::string& bytes) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    ASSERT_NE(file, nullptr) << path;
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), file), bytes.size());
    ASSERT_EQ(std::fclose(file), 0);
}

// Each test gets a fresh directory, so leftover files are visible and cleaned up.
class IoTest : public ::testing::Test {
protected:
    void SetUp() override {
        const std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        dir_ = fs::temp_directory_path() / ("igan_io_" + std::to_string(getpid()) + "_" + test);
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    std::vector<std::string> listing() const {
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(dir_)) {
            names.push_back(entry.path().filename().string());
        }
        std::sort(names.begin(), names.end());
        return names;
    }

    fs::path dir_;
};

// ---- safetensors ---------------------------------------------------------------------------

std::string le64(uint64_t value) {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));
    return bytes;
}

std::string safetensors_bytes(const std::string& header, const std::string& data) {
    return le64(header.size()) + header + data;
}

template <typename T>
std::string raw(std::initializer_list<T> values) {
    std::string bytes;
    for (T value : values) bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
    return bytes;
}

TensorFile sample_file() {
    at::manual_seed(7);
    TensorFile file;
    file.tensors["f32"] = at::randn({2, 3});
    file.tensors["f64"] = at::randn({4}, at::kDouble);
    file.tensors["f16"] = at::randn({3, 1, 2}).to(at::kHalf);
    file.tensors["bf16"] = at::randn({5}).to(at::kBFloat16);
    file.tensors["i64_transposed"] = at::arange(6, at::kLong).view({2, 3}).t();
    file.tensors["i32_scalar"] = at::scalar_tensor(-42, at::kInt);
    file.tensors["i16"] = at::tensor({-32768, 0, 32767}, at::kShort);
    file.tensors["i8"] = at::tensor({-128, 127}, at::kChar);
    file.tensors["u8_empty"] = at::empty({0, 3}, at::kByte);
    file.tensors["bool"] = at::tensor({1, 0, 0, 1}, at::kInt).to(at::kBool).view({2, 2});
    file.metadata["igan.arch"] = "infinitygan";
    file.metadata["igan.config"] = R"({"seed": 1, "name": "caf\u00e9"})";
    file.metadata["unicode"] = "caf\xc3\xa9";
    return file;
}

TEST_F(IoTest, SafetensorsRoundTripsDTypesShapesAndMetadata) {
    const TensorFile original = sample_file();
    write_safetensors(path("m.safetensors"), original);
    const TensorFile loaded = read_safetensors(path("m.safetensors"));

    EXPECT_EQ(loaded.metadata, original.metadata);
    ASSERT_EQ(loaded.tensors.size(), original.tensors.size());
    for (const auto& [name, tensor] : original.tensors) {
        SCOPED_TRACE(name);
        const at::Tensor& got = loaded.tensors.at(name);
        EXPECT_EQ(got.scalar_type(), tensor.scalar_type());
        EXPECT_EQ(got.sizes(), tensor.sizes());
        EXPECT_TRUE(got.device().is_cpu());
        EXPECT_TRUE(at::equal(got, tensor));
    }
    EXPECT_EQ(loaded.tensors.at("i32_scalar").dim(), 0);
    EXPECT_EQ(listing(), std::vector<std::string>{"m.safetensors"});
}

TEST_F(IoTest, SafetensorsWrittenLayoutFollowsTheFormat) {
    const TensorFile original = sample_file();
    write_safetensors(path("m.safetensors"), original);
    const std::string bytes = read_file(path("m.safetensors"));

    ASSERT_GE(bytes.size(), 8u);
    uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) header_size = header_size << 8 | uint8_t(bytes[i]);
    EXPECT_EQ(header_size % 8, 0u);
    ASSERT_LE(8 + header_size, bytes.size());
    const std::string header_text = bytes.substr(8, header_size);
    EXPECT_EQ(header_text.front(), '{');
    const auto header = nlohmann::json::parse(header_text);

    EXPECT_EQ(header.at("__metadata__").at("igan.arch"), "infinitygan");
    const auto& f32 = header.at("f32");
    EXPECT_EQ(f32.at("dtype"), "F32");
    EXPECT_EQ(f32.at("shape"), nlohmann::json({2, 3}));
    EXPECT_EQ(header.at("i32_scalar").at("shape"), nlohmann::json::array());
    EXPECT_EQ(header.at("bf16").at("dtype"), "BF16");

    // As the reference reader demands: offsets tile the data section with no gap or overlap.
    std::vector<std::pair<uint64_t, uint64_t>> spans;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") continue;
        spans.emplace_back(entry.at("data_offsets")[0].get<uint64_t>(),
                           entry.at("data_offsets")[1].get<uint64_t>());
    }
    std::sort(spans.begin(), spans.end());
    uint64_t end = 0;
    for (const auto& [begin, stop] : spans) {
        EXPECT_EQ(begin, end);
        end = stop;
    }
    EXPECT_EQ(8 + header_size + end, bytes.size());

    // Raw little-endian C-contiguous data, transposed input included.
    const auto begin = header.at("i64_transposed").at("data_offsets")[0].get<uint64_t>();
    EXPECT_EQ(bytes.substr(8 + header_size + begin, 48), raw<int64_t>({0, 3, 1, 4, 2, 5}));
}

TEST_F(IoTest, SafetensorsReadsHandWrittenFile) {
    // As Python's safetensors writes it: metadata first, keys unsorted, an I64 at an offset
    // that is not 8-byte aligned (the golden inputs have those).
    const std::string header =
        R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[1,3],)"
        R"("data_offsets":[0,12]},"idx":{"dtype":"I64","shape":[1],"data_offsets":[12,20]}})"
        "    ";
    const std::string data = raw<float>({1.5f, -2.0f, 0.25f}) + raw<int64_t>({-7});
    write_bytes(path("inputs.safetensors"), safetensors_bytes(header, data));

    const TensorFile file = read_safetensors(path("inputs.safetensors"));
    EXPECT_EQ(file.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
    ASSERT_EQ(file.tensors.size(), 2u);
    EXPECT_TRUE(at::equal(file.tensors.at("x"), at::tensor({1.5f, -2.0f, 0.25f}).view({1, 3})));
    EXPECT_EQ(file.tensors.at("idx").scalar_type(), at::kLong);
    EXPECT_EQ(file.tensors.at("idx").item<int64_t>(), -7);
}

TEST(Safetensors, CorruptInputsGiveOneLineErrors) {
    const std::string f32x2 = raw<float>({1.0f, 2.0f});
    const auto entry = [](const std::string& fields) { return R"({"x":{)" + fields + "}}"; };
    struct Case {
        const char* label;
        std::string bytes;
        const char* expected;
    };
    const std::vector<Case> cases = {
        {"empty file", "", "too few for a safetensors header"},
        {"7 bytes", std::string(7, '\0'), "has only 7 bytes"},
        {"header longer than file", le64(100) + "{}", "truncated: header declares 100 bytes"},
        {"header length 2^63", le64(uint64_t{1} << 63) + "{}", "exceeds the 100 MB limit"},
        {"invalid JSON", safetensors_bytes(R"({"x": )", ""), "invalid JSON header"},
        {"invalid UTF-8", safetensors_bytes("{\"\xff\":1}", ""), "invalid JSON header"},
        {"JSON array", safetensors_bytes("[1, 2]", ""), "header is not a JSON object"},
        {"deep nesting", safetensors_bytes(std::string(50, '[') + std::string(50, ']'), ""),
         "nested too deeply"},
        {"entry not an object", safetensors_bytes(R"({"x": 5})", ""), "not a JSON object"},
        {"missing dtype", safetensors_bytes(entry(R"("shape":[2],"data_offsets":[0,8])"), f32x2),
         "\"dtype\""},
        {"unknown dtype",
         safetensors_bytes(entry(R"("dtype":"Q7","shape":[2],"data_offsets":[0,8])"), f32x2),
         "unsupported dtype \"Q7\""},
        {"missing shape", safetensors_bytes(entry(R"("dtype":"F32","data_offsets":[0,8])"), f32x2),
         "\"shape\""},
        {"missing data_offsets", safetensors_bytes(entry(R"("dtype":"F32","shape":[2])"), f32x2),
         "\"data_offsets\" is missing"},
        {"reversed data_offsets",
         safetensors_bytes(entry(R"("dtype":"F32","shape":[0],"data_offsets":[8,0])"), f32x2),
         "begin <= end"},
        {"shape/size mismatch",
         safetensors_bytes(entry(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])"), f32x2),
         "shape [3] of F32 needs 12 bytes but data_offsets span 8"},
        {"negative dimension",
         safetensors_bytes(entry(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])"), f32x2),
         "has dimension -2"},
        {"fractional dimension",
         safetensors_bytes(entry(R"("dtype":"F32","shape":[2.5],"data_offsets":[0,8])"), f32x2),
         "has dimension 2.5"},
        {"dimension beyond int64",
         safetensors_bytes(
             entry(R"("dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8])"), f32x2),
         "dimensions are integers from 0 to 2^63-1"},
        {"overflowing shape",
         safetensors_bytes(
             entry(R"("dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8])"), f32x2),
         "is too large"},
        {"offsets outside file",
         safetensors_bytes(entry(R"("dtype":"F32","shape":[250],"data_offsets":[0,1000])"), f32x2),
         "truncated: header declares 1000 bytes of tensor data, file has 8"},
        {"truncated data",
         safetensors_bytes(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0,8])"),
                           f32x2.substr(0, 5)),
         "truncated: header declares 8 bytes of tensor data, file has 5"},
        {"metadata not strings", safetensors_bytes(R"({"__metadata__":{"step":1}})", ""),
         "\"__metadata__\" value \"step\" is not a string"},
        {"bool byte other than 0/1",
         safetensors_bytes(entry(R"("dtype":"BOOL","shape":[2],"data_offsets":[0,2])"),
                           std::string("\x01\x02", 2)),
         "BOOL data"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.label);
        const std::string message = error_of([&] { parse_safetensors(c.bytes, "bad.st"); });
        EXPECT_EQ(message.rfind("bad.st: ", 0), 0u) << message;
        EXPECT_NE(message.find(c.expected), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
}

// The format requires the tensors to tile the data section: no shared bytes, no holes, nothing
// after the last tensor.
TEST(Safetensors, OverlapsHolesAndTrailingBytesAreRefused) {
    const std::string f32x4 = raw<float>({1.0f, 2.0f, 3.0f, 4.0f});
    const auto two = [](const char* a, const char* b) {
        return std::string(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)") + a +
               R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":)" + b + "}}";
    };
    EXPECT_NO_THROW(parse_safetensors(safetensors_bytes(two("[8,16]", "[0,8]"), f32x4), "ok"));
    const std::pair<std::string, const char*> cases[] = {
        {safetensors_bytes(two("[0,8]", "[4,12]"), f32x4.substr(0, 12)), "overlap tensor \"a\""},
        {safetensors_bytes(two("[0,8]", "[0,8]"), f32x4.substr(0, 8)), "overlap tensor"},
        {safetensors_bytes(two("[0,8]", "[12,20]"), f32x4 + "1234"), "forbids holes"},
        {safetensors_bytes(two("[0,8]", "[8,16]"), f32x4 + "x"), "1 bytes after the last tensor"},
        {safetensors_bytes("{}", "trailing"), "8 bytes after the last tensor"},
    };
    for (const auto& [bytes, expected] : cases) {
        const std::string message = error_of([&] { parse_safetensors(bytes, "bad.st"); });
        EXPECT_NE(message.find(expected), std::string::npos) << message;
    }
}

// A model path that is a device, a FIFO or a huge sparse file must fail at once, not read
// forever (or gigabytes) before the header is checked.
TEST_F(IoTest, SafetensorsReadsOnlyWhatItsHeaderDescribes) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_NE(error_of([&] { read_safetensors("/dev/zero"); }).find("not a regular file"),
              std::string::npos);
    ASSERT_EQ(::mkfifo(path("fifo").c_str(), 0600), 0);  // open() must not wait for a writer
    EXPECT_NE(error_of([&] { read_safetensors(path("fifo")); }).find("not a regular file"),
              std::string::npos);
    const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    write_bytes(path("sparse.safetensors"), safetensors_bytes(header, raw<float>({1.0f, 2.0f})));
    fs::resize_file(path("sparse.safetensors"), uint64_t{2} << 30);  // a 2 GB hole
    EXPECT_NE(error_of([&] {
                  read_safetensors(path("sparse.safetensors"));
              }).find("bytes after the last tensor"),
              std::string::npos);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
    EXPECT_NE(error_of([&] { read_file("/dev/zero"); }).find("not a regular file"),
              std::string::npos);
}

TEST_F(IoTest, SafetensorsFileErrorsNameThePath) {
    EXPECT_EQ(error_of([&] { read_safetensors(path("missing.safetensors")); }),
              "cannot open " + path("missing.safetensors") + ": No such file or directory");

    write_bytes(path("cut.safetensors"), safetensors_bytes(R"({"x":{"dtype":"F32","shape":[2],)"
                                                           R"("data_offsets":[0,8]}})",
                                                           "1234"));
    const std::string message = error_of([&] { read_safetensors(path("cut.safetensors")); });
    EXPECT_EQ(message.rfind(path("cut.safetensors") + ": truncated", 0), 0u) << message;
}

TEST_F(IoTest, SafetensorsWriterRejectsBadInputAndLeavesNoFile) {
    TensorFile reserved;
    reserved.tensors["__metadata__"] = at::zeros({1});
    EXPECT_NE(
        error_of([&] { write_safetensors(path("a.safetensors"), reserved); }).find("reserved"),
        std::string::npos);

    TensorFile complex;
    complex.tensors["z"] = at::zeros({2}, at::kComplexFloat);
    EXPECT_NE(error_of([&] {
                  write_safetensors(path("b.safetensors"), complex);
              }).find("has no safetensors equivalent"),
              std::string::npos);

    TensorFile ok;
    ok.tensors["x"] = at::ones({2});
    const std::string target = path("no/such/dir/c.safetensors");
    EXPECT_EQ(error_of([&] { write_safetensors(target, ok); }),
              "cannot create " + target + ": No such file or directory");
    EXPECT_TRUE(listing().empty());
}

TEST_F(IoTest, SafetensorsOverwriteLeavesNoTemporaryFiles) {
    TensorFile first;
    first.tensors["x"] = at::ones({3});
    write_safetensors(path("m.safetensors"), first);
    TensorFile second;
    second.tensors["y"] = at::zeros({2}, at::kLong);
    write_safetensors(path("m.safetensors"), second);

    EXPECT_EQ(listing(), std::vector<std::string>{"m.safetensors"});
    const TensorFile loaded = read_safetensors(path("m.safetensors"));
    ASSERT_EQ(loaded.tensors.size(), 1u);
    EXPECT_TRUE(at::equal(loaded.tensors.at("y"), second.tensors.at("y")));
}

// ---- hash and atomic files -----------------------------------------------------------------

TEST_F(IoTest, Sha256MatchesKnownDigests) {
    EXPECT_EQ(sha256_bytes("abc", 3),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_bytes("", 0),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    write_bytes(path("abc"), "abc");
    EXPECT_EQ(sha256_file(path("abc")), sha256_bytes("abc", 3));

    // Spans several 1 MB chunks, ending mid-chunk.
    std::string big((5 << 20) / 2, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + (i >> 12));
    write_bytes(path("big"), big);
    EXPECT_EQ(sha256_file(path("big")), sha256_bytes(big.data(), big.size()));

    EXPECT_EQ(error_of([&] { sha256_file(path("missing")); }),
              "cannot open " + path("missing") + ": No such file or directory");
}

TEST_F(IoTest, AtomicFileReplacesOnlyOnCommit) {
    write_bytes(path("out"), "old");
    {
        AtomicFile file(path("out"));
        EXPECT_EQ(fs::path(file.temp_path()).parent_path(), dir_);
        file.write("new", 3);
        EXPECT_EQ(read_file(path("out")), "old");
        file.commit();
    }
    EXPECT_EQ(read_file(path("out")), "new");
    {
        AtomicFile abandoned(path("out"));
        abandoned.write("partial", 7);
        EXPECT_EQ(listing().size(), 2u);
    }
    EXPECT_EQ(read_file(path("out")), "new");
    EXPECT_EQ(listing(), std::vector<std::string>{"out"});
}

TEST_F(IoTest, CheckWritablePathFailsEarly) {
    EXPECT_NO_THROW(check_writable_path(path("new.png")));
    write_bytes(path("existing.png"), "x");
    EXPECT_NO_THROW(check_writable_path(path("existing.png")));

    const std::string missing = path("nope/out.png");
    EXPECT_EQ(
        error_of([&] { check_writable_path(missing); }),
        "cannot write " + missing + ": directory " + path("nope") + ": No such file or directory");
    EXPECT_NE(error_of([&] {
                  check_writable_path(path("existing.png/out.png"));
              }).find("is not a directory"),
              std::string::npos);
    EXPECT_NE(error_of([&] { check_writable_path(dir_.string()); }).find("is a directory"),
              std::string::npos);
    EXPECT_THROW(check_writable_path(""), Error);
}

// Outputs are renamed into place: a FIFO or device node there would be replaced by a file
// (as root, /dev/null itself).
TEST_F(IoTest, NonRegularOutputsAreRefusedAndLeftAlone) {
    ASSERT_EQ(::mkfifo(path("fifo.png").c_str(), 0600), 0);
    EXPECT_NE(error_of([&] { check_writable_path(path("fifo.png")); }).find("it is a FIFO"),
              std::string::npos);
    EXPECT_THROW(AtomicFile file(path("fifo.png")), Error);
    EXPECT_THROW(PngWriter(path("fifo.png"), 1, 1, {}), Error);
    EXPECT_NE(error_of([&] { check_writable_path("/dev/null"); }).find("character device"),
              std::string::npos);
    struct stat info {};
    ASSERT_EQ(::stat(path("fifo.png").c_str(), &info), 0);
    EXPECT_TRUE(S_ISFIFO(info.st_mode));
    EXPECT_EQ(listing(), std::vector<std::string>{"fifo.png"});
}

// What a signal handler calls before the process dies: every live temporary file goes, committed
// outputs stay.
TEST_F(IoTest, PendingTemporaryFilesAreSweptAndCommittedOnesKept) {
    AtomicFile done(path("done"));
    done.write("x", 1);
    done.commit();
    AtomicFile a(path("a")), b(path("b"));
    a.write("partial", 7);
    EXPECT_EQ(listing().size(), 3u);
    remove_pending_temp_files();
    EXPECT_EQ(listing(), std::vector<std::string>{"done"});
    AtomicFile c(path("c"));  // slots are reused after their files go
    remove_pending_temp_files();
    EXPECT_EQ(listing(), std::vector<std::string>{"done"});
}

TEST_F(IoTest, AtomicDirAppearsWholeOnCommit) {
    {
        AtomicDir dir(path("step-1"));
        EXPECT_EQ(fs::path(dir.temp_path()).parent_path(), dir_);
        write_bytes(dir.temp_path() + "/G.safetensors", "weights");
        EXPECT_FALSE(fs::exists(path("step-1")));
        dir.commit();
    }
    EXPECT_EQ(read_file(path("step-1/G.safetensors")), "weights");
    {
        AtomicDir abandoned(path("step-2"));
        write_bytes(abandoned.temp_path() + "/G.safetensors", "partial");
        EXPECT_EQ(listing().size(), 2u);
    }
    EXPECT_EQ(listing(), std::vector<std::string>{"step-1"});
    AtomicDir again(path("step-1"));  // an existing folder is never replaced
    EXPECT_NE(error_of([&] { again.commit(); }).find("existing"), std::string::npos);
    EXPECT_EQ(read_file(path("step-1/G.safetensors")), "weights");
}

// An output whose directory cannot take it: for everyone (root included) a "directory" that is
// a regular file; without root, also a read-only directory (root bypasses permissions).
TEST_F(IoTest, UnwritableDirectoryIsRefused) {
    write_bytes(path("file"), "x");
    EXPECT_NE(error_of([&] { check_writable_path(path("file/out.png")); }).find("not a directory"),
              std::string::npos);
    EXPECT_THROW(PngWriter(path("file/out.png"), 1, 1, {}), Error);
    EXPECT_THROW(AtomicDir(path("file/step-1")), Error);
    EXPECT_EQ(listing(), std::vector<std::string>{"file"});
    if (geteuid() == 0) return;
    fs::create_directory(path("locked"));
    fs::permissions(path("locked"), fs::perms::owner_read | fs::perms::owner_exec);
    EXPECT_NE(error_of([&] { check_writable_path(path("locked/out.png")); }).find("not writable"),
              std::string::npos);
    EXPECT_THROW(PngWriter(path("locked/out.png"), 1, 1, {}), Error);
    fs::permissions(path("locked"), fs::perms::owner_all);
}

// ---- PNG writer ----------------------------------------------------------------------------

std::vector<uint8_t> pattern(int64_t width, int64_t height) {
    std::vector<uint8_t> rgb(static_cast<size_t>(width * height * 3));
    for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 37 + i / 7);
    return rgb;
}

TEST_F(IoTest, PngWriterStreamsRowsAndText) {
    const int64_t width = 7, height = 5;
    const std::vector<uint8_t> rgb = pattern(width, height);
    const std::vector<std::pair<std::string, std::string>> text = {
        {"igan.config", R"({"seed": 1, "name": "caf)"
                        "\xc3\xa9"
                        R"("})"},
        {"Software", "igan"},
    };
    PngWriter writer(path("out.png"), width, height, text, 9);
    writer.write_rows(rgb.data(), 2);
    writer.write_rows(rgb.data() + 2 * width * 3, 0);
    EXPECT_FALSE(fs::exists(path("out.png")));
    writer.write_rows(rgb.data() + 2 * width * 3, 3);
    EXPECT_EQ(writer.rows_written(), 5);
    writer.finish();
    EXPECT_EQ(listing(), std::vector<std::string>{"out.png"});

    const Image image = read_image(path("out.png"));
    EXPECT_EQ(image.width, width);
    EXPECT_EQ(image.height, height);
    EXPECT_EQ(image.channels, 3);
    EXPECT_EQ(image.pixels, rgb);
    const std::map<std::string, std::string> expected(text.begin(), text.end());
    EXPECT_EQ(read_png_text(path("out.png")), expected);
}

TEST_F(IoTest, PngWriterDestroyedBeforeFinishLeavesNothing) {
    const std::vector<uint8_t> rgb = pattern(4, 4);
    {
        PngWriter writer(path("out.png"), 4, 4, {});
        writer.write_rows(rgb.data(), 2);
    }
    EXPECT_TRUE(listing().empty());

    write_bytes(path("out.png"), "previous render");
    try {
        PngWriter writer(path("out.png"), 4, 4, {});
        writer.write_rows(rgb.data(), 3);
        throw std::runtime_error("render failed");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(listing(), std::vector<std::string>{"out.png"});
    EXPECT_EQ(read_file(path("out.png")), "previous render");
}

TEST_F(IoTest, PngWriterChecksRowCount) {
    const std::vector<uint8_t> rgb = pattern(3, 4);
    {
        PngWriter writer(path("more.png"), 3, 3, {});
        writer.write_rows(rgb.data(), 2);
        EXPECT_NE(error_of([&] {
                      writer.write_rows(rgb.data(), 2);
                  }).find("would not fit the declared height of 3"),
                  std::string::npos);
        writer.write_rows(rgb.data(), 1);
        writer.finish();
        EXPECT_THROW(writer.write_rows(rgb.data(), 1), Error);
    }
    {
        PngWriter writer(path("fewer.png"), 3, 3, {});
        writer.write_rows(rgb.data(), 2);
        EXPECT_NE(error_of([&] { writer.finish(); }).find("only 2 of 3 rows were written"),
                  std::string::npos);
    }
    EXPECT_EQ(listing(), std::vector<std::string>{"more.png"});
}

TEST_F(IoTest, PngWriterRejectsBadArgumentsAndPaths) {
    EXPECT_THROW(PngWriter(path("a.png"), 0, 4, {}), Error);
    EXPECT_THROW(PngWriter(path("a.png"), 4, int64_t{1} << 31, {}), Error);
    EXPECT_THROW(PngWriter(path("a.png"), 4, 4, {}, 10), Error);
    EXPECT_THROW(PngWriter(path("a.png"), 4, 4, {{std::string(80, 'k'), "v"}}), Error);
    EXPECT_THROW(PngWriter(path("a.png"), 4, 4, {{"", "v"}}), Error);
    EXPECT_THROW(PngWriter(path("a.png"), 4, 4, {{"k", std::string("a\0b", 3)}}), Error);

    const std::string missing = path("no/dir/a.png");
    EXPECT_EQ(error_of([&] { PngWriter(missing, 4, 4, {}); }),
              "cannot create " + missing + ": No such file or directory");
    write_bytes(path("file"), "x");
    EXPECT_EQ(error_of([&] { PngWriter(path("file/a.png"), 4, 4, {}); }),
              "cannot create " + path("file/a.png") + ": Not a directory");
    EXPECT_EQ(listing(), std::vector<std::string>{"file"});
}

// ---- read_image ----------------------------------------------------------------------------

struct PngSpec {
    uint32_t width;
    uint32_t height;
    int bit_depth;
    int color_type;
    std::vector<uint8_t> rows;  // packed rows as stored in the file
    std::vector<png_color> palette = {};
    std::vector<png_byte> alpha = {};  // tRNS for palette images
    int interlace = PNG_INTERLACE_NONE;
};

// libpng longjmps on error; this function holds the setjmp and no C++ objects.
bool write_png_with_libpng(const char* path, const PngSpec* spec) {
    std::FILE* file = std::fopen(path, "wb");
    if (file == nullptr) return false;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        std::fclose(file);
        return false;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, spec->width, spec->height, spec->bit_depth, spec->color_type,
                 spec->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (!spec->palette.empty()) {
        png_set_PLTE(png, info, spec->palette.data(), static_cast<int>(spec->palette.size()));
    }
    if (!spec->alpha.empty()) {
        png_set_tRNS(png, info, spec->alpha.data(), static_cast<int>(spec->alpha.size()), nullptr);
    }
    png_write_info(png, info);
    const int passes = png_set_interlace_handling(png);
    const size_t stride = png_get_rowbytes(png, info);
    for (int pass = 0; pass < passes; ++pass) {
        for (uint32_t y = 0; y < spec->height; ++y) png_write_row(png, &spec->rows[y * stride]);
    }
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return std::fclose(file) == 0;
}

TEST_F(IoTest, ReadImageConvertsPngVariantsToRgb8) {
    struct Case {
        const char* label;
        PngSpec spec;
        std::vector<uint8_t> rgb;
    };
    const std::vector<png_color> palette = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 8, 7}};
    std::vector<uint8_t> interlaced(8 * 8 * 3);
    for (size_t i = 0; i < interlaced.size(); ++i) interlaced[i] = static_cast<uint8_t>(i * 7);
    const std::vector<Case> cases = {
        {"gray 8",
         {3, 1, 8, PNG_COLOR_TYPE_GRAY, {0, 100, 255}},
         {0, 0, 0, 100, 100, 100, 255, 255, 255}},
        {"gray 1",
         {4, 1, 1, PNG_COLOR_TYPE_GRAY, {0xa0}},
         {255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0}},
        {"gray 16",
         {2, 1, 16, PNG_COLOR_TYPE_GRAY, {0x12, 0x12, 0xfe, 0xfe}},
         {0x12, 0x12, 0x12, 0xfe, 0xfe, 0xfe}},
        {"gray+alpha",
         {2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, {10, 0, 20, 255}},
         {10, 10, 10, 20, 20, 20}},
        {"RGBA", {2, 1, 8, PNG_COLOR_TYPE_RGBA, {1, 2, 3, 0, 4, 5, 6, 128}}, {1, 2, 3, 4, 5, 6}},
        {"RGB 16",
         {1, 2, 16, PNG_COLOR_TYPE_RGB, {7, 7, 8, 8, 9, 9, 0xff, 0xff, 0, 0, 0x80, 0x80}},
         {7, 8, 9, 255, 0, 128}},
        {"RGBA 16", {1, 1, 16, PNG_COLOR_TYPE_RGBA, {1, 1, 2, 2, 3, 3, 0, 0}}, {1, 2, 3}},
        {"palette 8",
         {3, 1, 8, PNG_COLOR_TYPE_PALETTE, {2, 0, 3}, palette},
         {0, 0, 255, 255, 0, 0, 9, 8, 7}},
        {"palette 2 + tRNS",
         {4, 1, 2, PNG_COLOR_TYPE_PALETTE, {0x1b}, palette, {0, 128}},
         {255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 8, 7}},
        {"RGB Adam7",
         {8, 8, 8, PNG_COLOR_TYPE_RGB, interlaced, {}, {}, PNG_INTERLACE_ADAM7},
         interlaced},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.label);
        ASSERT_TRUE(write_png_with_libpng(path("v.png").c_str(), &c.spec));
        const Image image = read_image(path("v.png"));
        EXPECT_EQ(image.width, c.spec.width);
        EXPECT_EQ(image.height, c.spec.height);
        EXPECT_EQ(image.channels, 3);
        EXPECT_EQ(image.pixels, c.rgb);
    }
}

std::string encode_jpeg(const std::vector<uint8_t>& pixels, int width, int height, int components) {
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr error{};
    cinfo.err = jpeg_std_error(&error);
    jpeg_create_compress(&cinfo);
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 95, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<uint8_t*>(&pixels[cinfo.next_scanline * width * components]);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    std::string bytes(reinterpret_cast<const char*>(buffer), size);
    std::free(buffer);
    return bytes;
}

std::vector<uint8_t> gradient(int width, int height) {
    std::vector<uint8_t> rgb;
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            rgb.insert(rgb.end(), {static_cast<uint8_t>(x * 8), static_cast<uint8_t>(y * 8), 128});
        }
    }
    return rgb;
}

TEST_F(IoTest, ReadImageDecodesJpegBySignature) {
    const std::vector<uint8_t> rgb = gradient(32, 24);
    // The extension lies on purpose: the format comes from the magic bytes.
    write_bytes(path("photo.png"), encode_jpeg(rgb, 32, 24, 3));
    const Image image = read_image(path("photo.png"));
    ASSERT_EQ(image.width, 32);
    ASSERT_EQ(image.height, 24);
    ASSERT_EQ(image.pixels.size(), rgb.size());
    int max_error = 0;
    double total_error = 0;
    for (size_t i = 0; i < rgb.size(); ++i) {
        const int error = std::abs(int(image.pixels[i]) - int(rgb[i]));
        max_error = std::max(max_error, error);
        total_error += error;
    }
    EXPECT_LE(max_error, 12);
    EXPECT_LE(total_error / rgb.size(), 2.0);

    const std::vector<uint8_t> gray = {0, 64, 128, 255};
    write_bytes(path("gray.jpg"), encode_jpeg(gray, 2, 2, 1));
    const Image gray_image = read_image(path("gray.jpg"));
    ASSERT_EQ(gray_image.pixels.size(), 12u);
    for (size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(gray_image.pixels[3 * i], gray_image.pixels[3 * i + 1]);
        EXPECT_EQ(gray_image.pixels[3 * i], gray_image.pixels[3 * i + 2]);
        EXPECT_NEAR(gray_image.pixels[3 * i], gray[i], 4);
    }
}

void expect_error_with_path(const std::string& path, const std::string& bytes,
                            const std::string& expected) {
    write_bytes(path, bytes);
    const std::string message = error_of([&] { read_image(path); });
    EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
}

TEST_F(IoTest, ReadImageRejectsCorruptAndTruncatedFiles) {
    const std::string jpeg = encode_jpeg(gradient(32, 24), 32, 24, 3);
    // Cut inside the entropy-coded data, where libjpeg would otherwise pad and carry on.
    expect_error_with_path(path("cut.jpg"), jpeg.substr(0, jpeg.size() - 20), "truncated JPEG");
    expect_error_with_path(path("head.jpg"), jpeg.substr(0, 40), "JPEG");
    expect_error_with_path(path("junk.jpg"), "\xff\xd8\xff\x01garbage",
                           "corrupt or unsupported JPEG");

    const std::vector<uint8_t> rgb = pattern(6, 6);
    {
        PngWriter writer(path("good.png"), 6, 6, {{"k", "v"}});
        writer.write_rows(rgb.data(), 6);
        writer.finish();
    }
    const std::string png = read_file(path("good.png"));
    for (size_t cut : {size_t{8}, size_t{20}, size_t{40}, png.size() / 2, png.size() - 1}) {
        SCOPED_TRACE(cut);
        expect_error_with_path(path("cut.png"), png.substr(0, cut), "corrupt PNG data");
    }
    std::string flipped = png;
    flipped[png.find("IDAT") + 6] ^= 0x40;
    expect_error_with_path(path("flipped.png"), flipped, "corrupt PNG data");

    expect_error_with_path(path("text.png"), "hello", "not a PNG or JPEG image");
    expect_error_with_path(path("empty.png"), "", "not a PNG or JPEG image");
    EXPECT_EQ(error_of([&] { read_image(path("missing.png")); }),
              "cannot open " + path("missing.png") + ": No such file or directory");
    EXPECT_NE(error_of([&] { read_png_text(path("head.jpg")); }).find("not a PNG file"),
              std::string::npos);
}

uint32_t crc32(const std::string& bytes) {
    uint32_t crc = 0xffffffff;
    for (unsigned char byte : bytes) {
        crc ^= byte;
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xedb88320 & (0 - (crc & 1)));
    }
    return ~crc;
}

std::string be32(uint32_t value) {
    return {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
            static_cast<char>(value >> 8), static_cast<char>(value)};
}

// Found by fuzz_image: libpng allocates a chunk's declared length before reading it, so 70
// bytes declaring a 1.6-GB text chunk cost 1.6 GB. Chunks must fit in the file.
TEST_F(IoTest, ReadImageRefusesChunksLongerThanTheFile) {
    const std::string ihdr = "IHDR" + be32(12) + be32(8) + std::string("\x08\x00\0\0\0", 5);
    const std::string lying = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr +
                              be32(crc32(ihdr)) + be32(0x624b4744) + "tEXtdate:modify";
    expect_error_with_path(path("lying.png"), lying,
                           "chunk \"tEXt\" declares 1649100612 bytes of data, the file has 11 left");
}

TEST_F(IoTest, ReadImageRefusesDecompressionBombs) {
    // A 45-byte file declaring 65536 x 65536 pixels; decoding must stop before allocating.
    const std::string ihdr = "IHDR" + be32(65536) + be32(65536) + std::string("\x08\x02\0\0\0", 5);
    const std::string bomb = std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + ihdr +
                             be32(crc32(ihdr)) + be32(0) + "IDAT" + be32(crc32("IDAT"));
    expect_error_with_path(path("bomb.png"), bomb, "more than the limit of 268435456 pixels");

    const std::vector<uint8_t> rgb = pattern(7, 5);
    PngWriter writer(path("small.png"), 7, 5, {});
    writer.write_rows(rgb.data(), 5);
    writer.finish();
    EXPECT_NE(error_of([&] { read_image(path("small.png"), 34); }).find("7x5"), std::string::npos);
    EXPECT_EQ(read_image(path("small.png"), 35).pixels, rgb);
}

}  // namespace
}  // namespace igan
