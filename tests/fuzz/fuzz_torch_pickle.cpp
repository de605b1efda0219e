// libFuzzer target for the torch.save reader (src/io/torch_pickle.cpp, src/io/zip_reader.cpp).
// Any input must either parse or throw igan::Error: no crash, no sanitizer report, no leak, no
// allocation beyond the limits. Parsed checkpoints are walked and every tensor is read.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DIGAN_FUZZ=ON -DIGAN_BUILD_TESTS=ON
//   cmake --build build-fuzz --target fuzz_torch_pickle
//   build-fuzz/tests/fuzz_torch_pickle -max_len=65536 -rss_limit_mb=2048
//       fuzz-work tests/fuzz/corpus    (fuzz-work: a scratch folder for new inputs)
//
// Built with -DIGAN_FUZZ_STANDALONE, it gets a main() that runs the files named on the command
// line once each (a smoke test without libFuzzer).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/torch_pickle.h"
#include "io/zip_reader.h"

namespace {

// Small limits keep each run fast and make the limit checks themselves reachable.
igan::PickleLimits fuzz_limits() {
    igan::PickleLimits limits;
    limits.max_pushes = 1 << 16;
    limits.max_pickle_bytes = 1 << 20;
    return limits;
}

void put_le(std::string& s, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s += char((v >> (8 * i)) & 0xFF);
}

// Mutated archives rarely keep a valid CRC, so each input is also tried as the pickle of a
// well-formed archive (with four 64-byte storages "0".."3"), which takes it straight to the
// unpickler.
std::string wrap_as_pickle(const uint8_t* data, size_t size) {
    std::vector<std::pair<std::string, std::string>> files = {
        {"f/data.pkl", std::string(reinterpret_cast<const char*>(data), size)}};
    for (int i = 0; i < 4; ++i) files.emplace_back("f/data/" + std::to_string(i), std::string(64, char(i)));
    std::string out, central;
    for (const auto& [name, bytes] : files) {
        const uint32_t crc = igan::crc32(bytes.data(), bytes.size());
        const uint64_t offset = out.size();
        for (std::string* s : {&out, &central}) {
            put_le(*s, s == &out ? 0x04034b50 : 0x02014b50, 4);
            if (s == &central) put_le(*s, 20, 2);
            put_le(*s, 20, 2);
            put_le(*s, 0, 8);
            put_le(*s, crc, 4);
            put_le(*s, bytes.size(), 4);
            put_le(*s, bytes.size(), 4);
            put_le(*s, name.size(), 2);
            put_le(*s, 0, 2);
            if (s == &central) {
                put_le(*s, 0, 6);  // comment length, disk, internal attributes
                put_le(*s, 0, 4);  // external attributes
                put_le(*s, offset, 4);
            }
        }
        out += name + bytes;
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

void walk(const igan::TorchCheckpoint& ck, const igan::PyObject& v, int depth, int& budget) {
    if (depth > ck.limits().max_depth || --budget < 0) return;
    using Kind = igan::PyObject::Kind;
    if (v.kind == Kind::kTensor) {
        const at::Tensor t = ck.tensor(v);
        if (t.numel() != 0 && t.is_floating_point()) (void)t.sum().item<double>();
    }
    for (const igan::PyObject* item : v.items) walk(ck, *item, depth + 1, budget);
    for (const auto& [key, value] : v.entries) {
        walk(ck, *key, depth + 1, budget);
        walk(ck, *value, depth + 1, budget);
    }
}

void run(const std::string& bytes) {
    try {
        const igan::TorchCheckpoint ck = igan::parse_torch_checkpoint(bytes, "fuzz", fuzz_limits());
        (void)igan::describe_pickle(ck, ck.root());
        int budget = 10000;
        walk(ck, ck.root(), 0, budget);
    } catch (const igan::Error&) {
        // The expected outcome for malformed input.
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    run(std::string(reinterpret_cast<const char*>(data), size));
    run(wrap_as_pickle(data, size));
    return 0;
}

#ifdef IGAN_FUZZ_STANDALONE
int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::ifstream in(argv[i], std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        try {
            const igan::TorchCheckpoint ck = igan::parse_torch_checkpoint(bytes, argv[i]);
            std::printf("%s", igan::describe_pickle(ck, ck.root(), 2, 30).c_str());
        } catch (const igan::Error& e) {
            std::printf("error: %s\n", e.what());
        }
        LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
    return 0;
}
#endif
