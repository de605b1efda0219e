// `igan convert` and the torch.save reader: the golden checkpoint of the original implementation
// converts to exactly the golden weights and reproduces the original outputs; small fixtures
// cover every dtype and both container formats; broken variants, made here from good bytes,
// fail with one clear igan::Error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "igan/igan.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/torch_pickle.h"
#include "io/zip_reader.h"
#include "model/generator.h"
#include "model/state.h"
#include "weights/config_file.h"

namespace igan {
namespace {

namespace fs = std::filesystem;
using Kind = PyObject::Kind;
using Files = std::vector<std::pair<std::string, std::string>>;
using namespace std::string_literals;  // pickles hold NUL bytes

const std::string kGoldenCheckpoint = "golden/official_checkpoint.pth.tar";

std::string data(const std::string& name) { return read_file(test::data_path(name)); }

// A fresh scratch folder per test, removed afterwards.
class TempDir {
public:
    TempDir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = fs::temp_directory_path() /
                (std::string("igan_convert_") + info->name() + "_" + std::to_string(::getpid()));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() { fs::remove_all(path_); }
    std::string file(const std::string& name) const { return (path_ / name).string(); }
    std::string write(const std::string& name, const std::string& bytes) const {
        std::ofstream(file(name), std::ios::binary) << bytes;
        return file(name);
    }

private:
    fs::path path_;
};

// ---- building archives and pickles by hand ----------------------------------------------------

void put_le(std::string& s, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s += char((v >> (8 * i)) & 0xFF);
}

// A ZIP with stored entries, as torch.save writes (minus its alignment padding).
std::string make_zip(const Files& files) {
    std::string out, central;
    for (const auto& [name, bytes] : files) {
        const uint32_t crc = crc32(bytes.data(), bytes.size());
        const uint64_t offset = out.size();
        put_le(out, 0x04034b50, 4);
        put_le(out, 20, 2);
        put_le(out, 0, 2);
        put_le(out, 0, 2);
        put_le(out, 0, 4);
        put_le(out, crc, 4);
        put_le(out, bytes.size(), 4);
        put_le(out, bytes.size(), 4);
        put_le(out, name.size(), 2);
        put_le(out, 0, 2);
        out += name + bytes;
        put_le(central, 0x02014b50, 4);
        put_le(central, 20, 2);
        put_le(central, 20, 2);
        put_le(central, 0, 2);
        put_le(central, 0, 2);
        put_le(central, 0, 4);
        put_le(central, crc, 4);
        put_le(central, bytes.size(), 4);
        put_le(central, bytes.size(), 4);
        put_le(central, name.size(), 2);
        put_le(central, 0, 6);
        put_le(central, 0, 2);
        put_le(central, 0, 4);
        put_le(central, offset, 4);
        central += name;
    }
    const uint64_t cd_offset = out.size();
    out += central;
    put_le(out, 0x06054b50, 4);
    put_le(out, 0, 4);
    put_le(out, files.size(), 2);
    put_le(out, files.size(), 2);
    put_le(out, central.size(), 4);
    put_le(out, cd_offset, 4);
    put_le(out, 0, 2);
    return out;
}

Files unzip(const std::string& bytes) {
    ZipArchive zip(bytes, "test");
    Files files;
    for (const auto& e : zip.entries()) files.emplace_back(e.name, std::string(zip.read(e)));
    return files;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    size_t n = 0;
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size(), ++n)
        s.replace(pos, from.size(), to);
    EXPECT_GT(n, 0u) << "pattern not found: " << from;
    return s;
}

// The golden checkpoint with its data.pkl edited (the archive is rebuilt around it).
std::string golden_with_pickle(const std::function<std::string(std::string)>& edit) {
    Files files = unzip(data(kGoldenCheckpoint));
    for (auto& [name, bytes] : files)
        if (name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0) bytes = edit(bytes);
    return make_zip(files);
}

// Pickle opcodes, protocol 2.
struct Pickle {
    std::string b = "\x80\x02";
    Pickle& op(char c) { b += c; return *this; }
    Pickle& str(const std::string& s) {
        b += 'X';
        put_le(b, s.size(), 4);
        b += s;
        return *this;
    }
    Pickle& i32(int32_t v) {
        b += 'J';
        put_le(b, uint32_t(v), 4);
        return *this;
    }
    Pickle& global(const std::string& module, const std::string& name) {
        b += 'c' + module + "\n" + name + "\n";
        return *this;
    }
    Pickle& ints(const std::vector<int64_t>& v) {
        op('(');
        for (int64_t x : v) i32(int32_t(x));
        return op('t');
    }
    Pickle& ordered_dict() { return global("collections", "OrderedDict").op(')').op('R'); }
    // _rebuild_tensor_v2(storage "0" of `numel` elements, offset, sizes, strides, False, {})
    Pickle& tensor(const std::string& storage, int64_t numel, int64_t offset,
                   const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides) {
        global("torch._utils", "_rebuild_tensor_v2").op('(');
        op('(').str("storage").global("torch", storage).str("0").str("cpu").i32(int32_t(numel));
        op('t').op('Q');
        i32(int32_t(offset)).ints(sizes).ints(strides).op('\x89').ordered_dict();
        return op('t').op('R');
    }
};

// {"g_ema": OrderedDict{"w": tensor}} with `storage` as data/0.
std::string tiny_checkpoint(const Pickle& tensor, const std::string& storage) {
    Pickle p;
    p.op('}').str("g_ema").ordered_dict().str("w");
    p.b += tensor.b.substr(2);
    p.op('s').op('s').op('.');
    return make_zip({{"archive/data.pkl", p.b}, {"archive/data/0", storage}, {"archive/version", "3\n"}});
}

std::string floats(std::vector<float> v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

using test::error_of;

std::string parse_error(const std::string& bytes, const PickleLimits& limits = {}) {
    return error_of([&] {
        TorchCheckpoint ck = parse_torch_checkpoint(bytes, "ck", limits);
        for (const auto& [k, v] : ck.root().entries)  // read every tensor one level down
            for (const auto& [k2, t] : v->entries)
                if (t->kind == Kind::kTensor) ck.tensor(*t);
    });
}

#define EXPECT_ERROR_HAS(message, needle)                                               \
    do {                                                                                \
        const std::string m_ = (message);                                               \
        EXPECT_NE(m_.find(needle), std::string::npos) << "error was: '" << m_ << "'";   \
        EXPECT_EQ(m_.find('\n'), std::string::npos) << "error is not one line: " << m_; \
    } while (0)

// ---- the reader ---------------------------------------------------------------------------------

TEST(Crc32, KnownValue) {
    EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u);
    EXPECT_EQ(crc32("", 0), 0u);
}

TEST(TorchPickle, ReadsTheGoldenCheckpointLayout) {
    const TorchCheckpoint ck = read_torch_checkpoint(test::data_path(kGoldenCheckpoint));
    EXPECT_FALSE(ck.legacy_format());
    const PyObject& root = ck.root();
    ASSERT_EQ(root.kind, Kind::kDict);
    for (const char* key : {"iter", "best_fid", "g", "d", "g_ema", "g_optim", "d_optim", "mean_path_lengths"})
        EXPECT_NE(root.get(key), nullptr) << key;
    EXPECT_EQ(root.get("g_ema")->entries.size(), 93u);
    EXPECT_EQ(root.get("d")->entries.size(), 47u);
    const PyObject* lengths = root.get("mean_path_lengths");
    ASSERT_EQ(lengths->kind, Kind::kList);
    ASSERT_EQ(lengths->items.size(), 1u);
    EXPECT_TRUE(ck.tensor_info(*lengths->items[0]).sizes.empty());  // a 0-d tensor
}

void expect_small_fixture(const TorchCheckpoint& ck) {
    const PyObject& r = ck.root();
    auto t = [&](const char* key) { return ck.tensor(*r.get(key)); };
    EXPECT_EQ(r.get("iter")->integer, 7);
    EXPECT_EQ(r.get("best_fid")->real, 42.5);  // numpy.float64
    const PyObject* g = r.get("g");
    ASSERT_EQ(g->entries.size(), 2u);
    EXPECT_TRUE(test::all_close(ck.tensor(*g->get("weight")),
                                torch::tensor({{-0.004322517663240433, 0.3097158372402191, -0.4751853346824646},
                                               {-0.4248946011066437, -0.2223689705133438, 0.15482072532176971}}),
                                1e-7));
    EXPECT_TRUE(test::all_close(ck.tensor(*g->get("bias")), torch::tensor({-0.011439144611358643, 0.45777493715286255}), 1e-7));
    EXPECT_TRUE(torch::equal(t("param"), torch::tensor({1.0f, -2.0f})));
    EXPECT_EQ(t("half").scalar_type(), at::kHalf);
    EXPECT_TRUE(torch::equal(t("half").to(at::kFloat), torch::tensor({0.5f, -1.25f})));
    EXPECT_EQ(t("bf16").scalar_type(), at::kBFloat16);
    EXPECT_EQ(t("bf16").item<float>(), 3.0f);
    EXPECT_TRUE(torch::equal(t("f64"), torch::tensor({{1.0, 2.0}}, torch::kDouble)));
    EXPECT_TRUE(torch::equal(t("long"), torch::tensor({int64_t(-3), int64_t(1) << 40})));
    EXPECT_TRUE(torch::equal(t("int8"), torch::tensor({-1, 5}, torch::kChar)));
    EXPECT_TRUE(torch::equal(t("bool"), torch::tensor({true, false, true})));
    EXPECT_TRUE(torch::equal(t("slice"), torch::tensor({2.0f, 4.0f, 6.0f})));
    EXPECT_TRUE(torch::equal(t("transposed"), torch::tensor({{0.0f, 3.0f}, {1.0f, 4.0f}, {2.0f, 5.0f}})));
    EXPECT_TRUE(t("transposed").is_contiguous());
    EXPECT_EQ(t("scalar").dim(), 0);
    EXPECT_EQ(t("scalar").item<float>(), 0.25f);
    EXPECT_EQ(t("empty").sizes(), (std::vector<int64_t>{0, 3}));

    const PyObject* m = r.get("meta");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->get("neg")->integer, -5);
    EXPECT_EQ(m->get("big")->kind, Kind::kBigInt);
    EXPECT_EQ(m->get("f")->real, 1.5);
    EXPECT_EQ(m->get("s")->text, "x\xc3\xa9");
    EXPECT_EQ(m->get("b")->kind, Kind::kBytes);
    EXPECT_EQ(m->get("b")->text, "ab\xff");
    EXPECT_EQ(m->get("n")->kind, Kind::kNone);
    ASSERT_EQ(m->get("t")->items.size(), 2u);
    EXPECT_EQ(m->get("t")->items[1]->items[1]->integer, 3);
    EXPECT_TRUE(m->get("l")->items[0]->boolean);
    EXPECT_EQ(m->get("i")->integer, -9);  // numpy.int64
    EXPECT_EQ(m->entries.back().first->integer, 1);
}

TEST(TorchPickle, ReadsEveryDtypeAndLayoutOfTheZipFormat) {
    const TorchCheckpoint ck = read_torch_checkpoint(test::data_path("convert/small.pth"));
    expect_small_fixture(ck);
}

TEST(TorchPickle, ReadsTheLegacyFormat) {
    const TorchCheckpoint ck = read_torch_checkpoint(test::data_path("convert/small_legacy.pth"));
    EXPECT_TRUE(ck.legacy_format());
    expect_small_fixture(ck);
}

TEST(TorchPickle, HandMadeCheckpointParses) {
    const std::string bytes =
        tiny_checkpoint(Pickle().tensor("FloatStorage", 4, 1, {3}, {1}), floats({0, 1, 2, 3}));
    const TorchCheckpoint ck = parse_torch_checkpoint(bytes, "tiny");
    EXPECT_TRUE(torch::equal(ck.tensor(*ck.root().get("g_ema")->get("w")), torch::tensor({1.0f, 2.0f, 3.0f})));
}

// ---- broken files: one clear error each --------------------------------------------------------

TEST(TorchPickleErrors, TruncatedAndGarbageFiles) {
    const std::string good = data(kGoldenCheckpoint);
    EXPECT_ERROR_HAS(parse_error(good.substr(0, good.size() / 2)), "no end-of-central-directory");
    EXPECT_ERROR_HAS(parse_error(good.substr(0, good.size() - 30)), "truncated or corrupt");
    EXPECT_ERROR_HAS(parse_error(good.substr(0, 10)), "not a ZIP archive");
    EXPECT_ERROR_HAS(parse_error(""), "empty file");
    EXPECT_ERROR_HAS(parse_error("hello, world"), "not a PyTorch checkpoint");
    std::string tar(1024, '\0');
    tar.replace(257, 5, "ustar");
    EXPECT_ERROR_HAS(parse_error(tar), "PyTorch before 0.4");
    const std::string legacy = data("convert/small_legacy.pth");
    EXPECT_ERROR_HAS(parse_error(legacy.substr(0, legacy.size() - 3)), "truncated");
    EXPECT_ERROR_HAS(parse_error(legacy.substr(0, 200)), "truncated pickle");
}

TEST(TorchPickleErrors, WrongCrc) {
    const std::string good = data(kGoldenCheckpoint);
    const ZipArchive zip(good, "ck");
    // Flip the recorded CRC of data.pkl in the central directory.
    const ZipEntry* pkl = zip.find("official_checkpoint.pth/data.pkl");
    ASSERT_NE(pkl, nullptr);
    std::string bad = good;
    const size_t cd = bad.find(std::string("PK\x01\x02", 4));
    bad[cd + 16] ^= 0x5A;
    EXPECT_ERROR_HAS(parse_error(bad), "data.pkl' is corrupt (CRC-32");
    // Flip one byte of a stored tensor: caught when that tensor is read.
    const ZipEntry* storage = zip.find("official_checkpoint.pth/data/0");
    bad = good;
    bad[storage->data_offset + 5] ^= 1;
    EXPECT_ERROR_HAS(parse_error(bad), "data/0' is corrupt");
}

TEST(TorchPickleErrors, RefusesGlobalsOutsideTheWhitelist) {
    // Same length, so only the pickle changes.
    const std::string bad = golden_with_pickle([](std::string p) {
        return replace_all(p, "collections\nOrderedDict\n", "subprocess\nPopen_______\n");
    });
    EXPECT_ERROR_HAS(parse_error(bad), "refusing global 'subprocess.Popen_______'");
    Pickle os;
    os.global("os", "system").str("echo hi").op(0x85).op('R').op('.');
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", os.b}})), "refusing global 'os.system'");
    Pickle builtins;
    builtins.b += "\x8c\x08" "builtins" "\x8c\x04" "eval" "\x93";  // STACK_GLOBAL
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", builtins.b}})), "refusing global 'builtins.eval'");
    // A whitelisted name used for something else is refused too.
    Pickle storage_call;
    storage_call.global("torch", "FloatStorage").op(')').op('R').op('.');
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", storage_call.b}})), "cannot be called");
}

TEST(TorchPickleErrors, UnsupportedOpcodesAndModules) {
    Pickle newobj;
    newobj.global("collections", "OrderedDict").op(')').op('\x81').op('.');
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", newobj.b}})), "opcode 0x81 (NEWOBJ)");
    Pickle module;
    module.op('(').str("module").global("collections", "OrderedDict").op('N').op('N').op('t').op('Q').op('.');
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", module.b}})), "pickled nn.Module");
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", "\x80\x02]q\x00h\x05."s}})), "memo entry 5 is missing");
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", "\x80\x02" "a."}})), "stack underflow");
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/constants.pkl", ""}, {"a/data.pkl", "N."}})), "TorchScript");
    EXPECT_ERROR_HAS(parse_error(make_zip({{"data.pkl", "N."}})), "top-level folder");
}

TEST(TorchPickleErrors, WrongDtypes) {
    // Float storages declared as int32: same bytes, so the reader accepts them; convert refuses.
    TempDir tmp;
    const std::string in = tmp.write("int.pth", golden_with_pickle([](std::string p) {
        return replace_all(p, "torch\nFloatStorage\n", "torch\nIntStorage\n");
    }));
    ConvertRequest r;
    r.in = in;
    r.out = tmp.file("out.safetensors");
    r.config = test::data_path("golden/config.json");
    const std::string e = error_of([&] { convert_checkpoint(r); });
    EXPECT_ERROR_HAS(e, "(93 problems)");
    EXPECT_ERROR_HAS(e, "wrong dtype for texture_synthesizer.mapping.1.weight: Int, expected a floating-point");
    EXPECT_FALSE(fs::exists(r.out));
    // int16 storages: the declared size no longer matches the stored bytes.
    const std::string short_bytes = golden_with_pickle([](std::string p) {
        return replace_all(p, "torch\nFloatStorage\n", "torch\nShortStorage\n");
    });
    EXPECT_ERROR_HAS(parse_error(short_bytes), "bytes, but is declared as");
    // A storage type that does not exist.
    const std::string complex = golden_with_pickle([](std::string p) {
        return replace_all(p, "torch\nFloatStorage\n", "torch\nComplexFloatStorage\n");
    });
    EXPECT_ERROR_HAS(parse_error(complex), "refusing global 'torch.ComplexFloatStorage'");
}

TEST(TorchPickleErrors, HugeDeclaredSizes) {
    const std::string four = floats({0, 1, 2, 3});
    // Storage larger than the archive entry.
    EXPECT_ERROR_HAS(parse_error(tiny_checkpoint(Pickle().tensor("FloatStorage", 1 << 30, 0, {4}, {1}), four)),
                     "declared as 1073741824 x Float");
    // Tensor larger than its storage, or reaching past it through offset or stride.
    EXPECT_ERROR_HAS(parse_error(tiny_checkpoint(Pickle().tensor("FloatStorage", 4, 0, {1 << 30, 1 << 30}, {0, 0}), four)),
                     "does not fit its storage of 4 elements");
    EXPECT_ERROR_HAS(parse_error(tiny_checkpoint(Pickle().tensor("FloatStorage", 4, 3, {2}, {1}), four)),
                     "does not fit");
    EXPECT_ERROR_HAS(parse_error(tiny_checkpoint(Pickle().tensor("FloatStorage", 4, 0, {2, 2}, {1 << 30, 1}), four)),
                     "does not fit");
    EXPECT_ERROR_HAS(parse_error(tiny_checkpoint(Pickle().tensor("FloatStorage", 4, 0, {4}, {1}), "abc")),
                     "declared as 4 x Float");
    // ZIP entry sizes beyond the file.
    std::string bad = data("convert/small.pth");
    const size_t cd = bad.find(std::string("PK\x01\x02", 4));
    bad.replace(cd + 20, 8, std::string("\xf0\xff\xff\x7f\xf0\xff\xff\x7f", 8));
    EXPECT_ERROR_HAS(parse_error(bad), "extends past the end of the archive data");
    // Strings, integers and the central directory claiming more than there is.
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", "\x80\x02X\xff\xff\xff\xff" "abc"s}})), "truncated pickle");
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", "\x80\x02\x8b\x00\x00\x00\x40"s}})), "integer of");
    std::string many = make_zip({{"a/data.pkl", "N."}});
    many.replace(many.size() - 12, 2, "\xff\x7f");  // total entries in the EOCD record only
    EXPECT_ERROR_HAS(parse_error(many), "multi-disk");
    many.replace(many.size() - 14, 4, "\xff\x7f\xff\x7f");  // and on this disk
    EXPECT_ERROR_HAS(parse_error(many), "central directory declares 32767 entries");
}

TEST(TorchPickleErrors, BoundedNestingAndObjectCount) {
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", "\x80\x02" + std::string(100, '(')}})),
                     "nested deeper than 64 levels");
    // A list that contains itself is fine to read (it is never walked without a bound).
    const TorchCheckpoint cyclic = parse_torch_checkpoint(make_zip({{"a/data.pkl", "\x80\x02]q\x00h\x00" "a."s}}), "c");
    EXPECT_NE(describe_pickle(cyclic, cyclic.root()).find("list"), std::string::npos);
    // Every push counts against the budget, including repeated memo references.
    std::string bomb = "\x80\x02]q\x00("s;
    for (int i = 0; i < 5000; ++i) bomb += "h\x00"s;
    bomb += "e.";
    PickleLimits small;
    small.max_pushes = 1000;
    EXPECT_ERROR_HAS(parse_error(make_zip({{"a/data.pkl", bomb}}), small), "more than 1000 pickled values");
    EXPECT_ERROR_HAS(parse_error(data(kGoldenCheckpoint), small), "more than 1000 pickled values");
    PickleLimits tiny_pickle;
    tiny_pickle.max_pickle_bytes = 1000;
    EXPECT_ERROR_HAS(parse_error(data(kGoldenCheckpoint), tiny_pickle), "more than the limit");
}

// ---- conversion ---------------------------------------------------------------------------------

std::map<std::string, at::Tensor> tensors_of(const std::string& path) { return read_safetensors(path).tensors; }

void expect_identical(const std::string& actual_path, const std::string& expected_path) {
    const auto actual = tensors_of(actual_path);
    const auto expected = tensors_of(expected_path);
    EXPECT_EQ(actual.size(), expected.size());
    for (const auto& [name, e] : expected) {
        auto it = actual.find(name);
        ASSERT_NE(it, actual.end()) << "missing " << name;
        EXPECT_EQ(it->second.scalar_type(), e.scalar_type()) << name;
        EXPECT_TRUE(torch::equal(it->second, e)) << name << " differs";
    }
}

TEST(Convert, GoldenGeneratorIsExactAndReproducesTheOriginalOutputs) {
    TempDir tmp;
    ConvertRequest r;
    r.in = test::data_path(kGoldenCheckpoint);
    r.out = tmp.file("g.safetensors");
    r.config = test::data_path("golden/config.json");
    const ConvertResult result = convert_checkpoint(r);
    EXPECT_EQ(result.arch, "infinitygan.generator");
    EXPECT_EQ(result.tensors, 93);
    EXPECT_EQ(result.values, 519672);
    EXPECT_EQ(result.step, 123456);
    EXPECT_TRUE(result.notes.empty()) << result.notes.front();
    expect_identical(r.out, test::data_path("golden/generator.safetensors"));
    const TensorFile file = read_safetensors(r.out);
    EXPECT_EQ(file.metadata.at("igan.arch"), "infinitygan.generator");
    EXPECT_EQ(file.metadata.at("igan.step"), "123456");
    EXPECT_EQ(nlohmann::json::parse(file.metadata.at("igan.config")),
              nlohmann::json::parse(result.config_json));

    // The converted file drives `igan forward` with no other help: cases a and b of the golden set.
    TensorFile inputs;
    for (const auto& [name, t] : tensors_of(test::data_path("golden/inputs.safetensors")))
        if (name.rfind("a.", 0) == 0 || name.rfind("b.", 0) == 0) inputs.tensors[name] = t;
    write_safetensors(tmp.file("inputs.safetensors"), inputs);
    ForwardRequest f;
    f.model = r.out;
    f.inputs = tmp.file("inputs.safetensors");
    f.out = tmp.file("outputs.safetensors");
    set_threads(2);
    run_forward(f);
    const auto expected = tensors_of(test::data_path("golden/outputs.safetensors"));
    const auto actual = tensors_of(f.out);
    int checked = 0;
    for (const char* name : {"a.gen", "a.structure_latent", "a.style", "a.styles", "b.gen", "b.structure_latent"}) {
        ASSERT_TRUE(actual.count(name)) << name;
        EXPECT_TRUE(test::all_close(actual.at(name), expected.at(name), 1e-4, 1e-4)) << name;
        ++checked;
    }
    EXPECT_EQ(checked, 6);
}

TEST(Convert, GoldenDiscriminatorIsExact) {
    TempDir tmp;
    ConvertRequest r;
    r.in = test::data_path(kGoldenCheckpoint);
    r.out = tmp.file("d.safetensors");
    r.part = "d";
    r.config = test::data_path("golden/config.json");
    const ConvertResult result = convert_checkpoint(r);
    EXPECT_EQ(result.arch, "infinitygan.discriminator");
    EXPECT_EQ(result.tensors, 47);
    expect_identical(r.out, test::data_path("golden/discriminator.safetensors"));
    const auto config = nlohmann::json::parse(read_safetensors(r.out).metadata.at("igan.config"));
    EXPECT_EQ(config["discriminator"]["d_extra_multiplier"], 0.125);
    EXPECT_EQ(config["discriminator"]["stddev_group"], 16);
    EXPECT_EQ(config["discriminator"]["patch_size"], 101);
}

TEST(Convert, OriginalYamlResolvesLikeTheJsonConfig) {
    TempDir tmp;
    ConvertRequest r;
    r.in = test::data_path(kGoldenCheckpoint);
    r.part = "g";
    r.out = tmp.file("json.safetensors");
    r.config = test::data_path("golden/config.json");
    const auto from_json = nlohmann::json::parse(convert_checkpoint(r).config_json);
    r.out = tmp.file("yaml.safetensors");
    r.config = test::data_path("convert/golden.yaml");
    const ConvertResult from_yaml = convert_checkpoint(r);
    EXPECT_EQ(nlohmann::json::parse(from_yaml.config_json)["generator"], from_json["generator"]);
    EXPECT_EQ(nlohmann::json::parse(from_yaml.config_json)["discriminator"], from_json["discriminator"]);
    // The YAML has no width patch: the golden widths come from the weights, and say so.
    ASSERT_EQ(from_yaml.notes.size(), 1u);
    EXPECT_NE(from_yaml.notes[0].find("ts_conv_out_channels [64, 64, 64, 64, 64, 64, 32, 32]"),
              std::string::npos);
}

// Every width of a generator, read back off its own state dict's shapes over another preset.
TEST(Convert, FromShapesRecoversAGeneratorsWidths) {
    const GeneratorConfig tiny = preset_config("tiny").generator;
    TensorShapes shapes;
    for (const auto& [key, t] : state_dict(*Generator(tiny))) shapes[key] = t.sizes().vec();
    std::vector<std::string> notes;
    const GeneratorConfig g = GeneratorConfig::from_shapes(shapes, preset_config("paper").generator,
                                                           &notes);
    EXPECT_EQ(g.ts_conv_out_channels, tiny.ts_conv_out_channels);
    EXPECT_EQ(g.global_latent_dim, tiny.global_latent_dim);
    EXPECT_EQ(g.local_latent_dim, tiny.local_latent_dim);
    EXPECT_EQ(g.n_mlp, tiny.n_mlp);
    EXPECT_EQ(g.ss_n_layers, tiny.ss_n_layers);
    EXPECT_EQ(g.ss_unfold_radius, tiny.ss_unfold_radius);
    EXPECT_FALSE(notes.empty());
    notes.clear();
    EXPECT_EQ(GeneratorConfig::from_shapes(shapes, tiny, &notes).ts_conv_out_channels,
              tiny.ts_conv_out_channels);
    EXPECT_TRUE(notes.empty());  // nothing to change
}

// Every command resolves --config through one reader: the original YAML works for init and
// train too, and gives the config the golden JSON gives.
TEST(Convert, EveryCommandReadsTheOriginalYaml) {
    const ConfigSource yaml = read_config(test::data_path("convert/golden.yaml"));
    const ConfigSource json = read_config(test::data_path("golden/config.json"));
    EXPECT_TRUE(yaml.train_params.is_object());
    EXPECT_EQ(nlohmann::json(load_model_config(test::data_path("convert/golden.yaml")).discriminator),
              nlohmann::json(json.config.discriminator));
    EXPECT_EQ(yaml.config.generator.full_size, json.config.generator.full_size);
    EXPECT_THROW(read_config("nosuch"), UsageError);
}

TEST(Convert, WidthsComeFromTheWeightsWhateverThePreset) {
    TempDir tmp;
    ConvertRequest r;
    r.in = test::data_path(kGoldenCheckpoint);
    r.out = tmp.file("g.safetensors");
    r.config = "paper";
    const ConvertResult result = convert_checkpoint(r);
    ASSERT_FALSE(result.notes.empty());
    EXPECT_NE(result.notes.back().find("global_latent_dim 64 (config: 512)"), std::string::npos)
        << result.notes.back();
    expect_identical(r.out, test::data_path("golden/generator.safetensors"));
    const auto config = nlohmann::json::parse(result.config_json);
    EXPECT_EQ(config["generator"]["ts_conv_out_channels"], nlohmann::json({64, 64, 64, 64, 64, 64, 32, 32}));
    EXPECT_EQ(config["discriminator"]["d_extra_multiplier"], 0.125);  // from the checkpoint's d
}

TEST(Convert, BareStateDictsAndDataParallelPrefixes) {
    TempDir tmp;
    // g_ema alone, every key under "module.", saved as the whole file.
    const TorchCheckpoint ck = read_torch_checkpoint(test::data_path(kGoldenCheckpoint));
    // A pickle {"module.<key>": tensor} over the golden storages, for every g_ema tensor.
    Pickle p;
    p.ordered_dict();
    Files kept;
    int n = 0;
    for (const auto& [key, t] : ck.root().get("g_ema")->entries) {
        const at::Tensor x = ck.tensor(*t);
        const std::string id = std::to_string(n++);
        p.str("module." + key->text);
        p.global("torch._utils", "_rebuild_tensor_v2").op('(');
        p.op('(').str("storage").global("torch", "FloatStorage").str(id).str("cpu").i32(int32_t(x.numel()));
        p.op('t').op('Q').i32(0).ints(x.sizes().vec()).ints(x.strides().vec()).op('\x89').ordered_dict();
        p.op('t').op('R').op('s');
        kept.emplace_back("bare/data/" + id,
                          std::string(static_cast<const char*>(x.data_ptr()), size_t(x.nbytes())));
    }
    p.op('.');
    kept.insert(kept.begin(), {"bare/data.pkl", p.b});
    ConvertRequest r;
    r.in = tmp.write("bare.pth", make_zip(kept));
    r.out = tmp.file("g.safetensors");
    r.config = test::data_path("golden/config.json");
    const ConvertResult result = convert_checkpoint(r);
    EXPECT_EQ(result.step, 0);
    expect_identical(r.out, test::data_path("golden/generator.safetensors"));
    // Asking a generator-only file for its discriminator names the problem.
    r.part = "d";
    EXPECT_ERROR_HAS(error_of([&] { convert_checkpoint(r); }), "bare state dict of a generator");
}

TEST(Convert, ListsEveryMismatchAtOnce) {
    TempDir tmp;
    // One key renamed (same length) and the config's widths contradicting nothing else.
    const std::string in = tmp.write("renamed.pth", golden_with_pickle([](std::string p) {
        return replace_all(p, "texture_synthesizer.to_rgbs.0.bias", "texture_synthesizer.to_rgbs.0.bian");
    }));
    ConvertRequest r;
    r.in = in;
    r.out = tmp.file("out.safetensors");
    r.config = test::data_path("golden/config.json");
    const std::string e = error_of([&] { convert_checkpoint(r); });
    EXPECT_ERROR_HAS(e, "(2 problems)");
    EXPECT_ERROR_HAS(e, "missing texture_synthesizer.to_rgbs.0.bias [1, 3, 1, 1]");
    EXPECT_ERROR_HAS(e, "unexpected texture_synthesizer.to_rgbs.0.bian [1, 3, 1, 1]");
    EXPECT_FALSE(fs::exists(r.out));

    // A config whose patch size the weights cannot make.
    std::string yaml = data("convert/golden.yaml");
    yaml = replace_all(yaml, "patch_size: 101", "patch_size: 389");
    r.in = test::data_path(kGoldenCheckpoint);
    r.config = tmp.write("hr.yaml", yaml);
    EXPECT_ERROR_HAS(error_of([&] { convert_checkpoint(r); }), "patch_size 389 does not match the weights");
}

TEST(Convert, RequestAndConfigErrors) {
    TempDir tmp;
    ConvertRequest r;
    r.in = test::data_path(kGoldenCheckpoint);
    r.out = tmp.file("out.safetensors");
    r.part = "g_emma";
    EXPECT_THROW(convert_checkpoint(r), UsageError);
    r.part = "g_ema";
    r.config = tmp.file("missing.yaml");
    EXPECT_THROW(convert_checkpoint(r), UsageError);
    r.config = tmp.write("nested.yaml", "train_params:\n  a: 1\n    b: 2\n");
    EXPECT_ERROR_HAS(error_of([&] { convert_checkpoint(r); }), "nested.yaml:3: nested mappings");
    r.config = tmp.write("tabs.yaml", "train_params:\n\tn_mlp: 2\n");
    EXPECT_ERROR_HAS(error_of([&] { convert_checkpoint(r); }), "tabs.yaml:2: tabs");
    r.config = tmp.write("sg2.yaml", "train_params:\n  styleGAN2_baseline: True\n  use_ss: False\n");
    EXPECT_ERROR_HAS(error_of([&] { convert_checkpoint(r); }), "StyleGAN2 baseline");
    r.config = tmp.write("nosection.yaml", "n_mlp: 2\n");
    EXPECT_ERROR_HAS(error_of([&] { convert_checkpoint(r); }), "no train_params section");
    r.config = "golden";
    r.in = test::data_path("convert/small.pth");
    EXPECT_ERROR_HAS(error_of([&] { convert_checkpoint(r); }), "no 'g_ema' in the checkpoint (it holds: iter, best_fid, g,");
    r.part = "g";
    EXPECT_ERROR_HAS(error_of([&] { convert_checkpoint(r); }), "does not match the InfinityGAN generator");
    EXPECT_FALSE(fs::exists(r.out));
}

}  // namespace
}  // namespace igan
