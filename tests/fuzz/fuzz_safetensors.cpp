// libFuzzer target for the safetensors reader (src/io/safetensors.cpp): any input must parse or
// throw igan::Error, with no crash, sanitizer report or leak. Inputs that parse are read through
// (every tensor summed), so a bad offset would show up as an out-of-bounds read.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DIGAN_FUZZ=ON
//   cmake --build build-fuzz --target fuzz_safetensors
//   build-fuzz/tests/fuzz_safetensors -max_len=65536 -rss_limit_mb=2048 fuzz-work \
//       tests/fuzz/corpus_safetensors
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        const igan::TensorFile file = igan::parse_safetensors(bytes, "fuzz");
        for (const auto& [name, tensor] : file.tensors)
            if (tensor.numel() > 0 && tensor.scalar_type() != at::kBool)
                (void)tensor.to(at::kDouble).sum().item<double>();
    } catch (const igan::Error&) {
    }
    return 0;
}
