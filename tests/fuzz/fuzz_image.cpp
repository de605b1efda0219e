// libFuzzer target for the PNG and JPEG decoders behind read_image (src/io/png.cpp): any input
// must decode to 8-bit RGB of the size it declares or throw igan::Error, with no crash,
// sanitizer report, leak or allocation beyond the pixel limit.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DIGAN_FUZZ=ON
//   cmake --build build-fuzz --target fuzz_image
//   ASAN_OPTIONS=quarantine_size_mb=64 build-fuzz/tests/fuzz_image -max_len=65536 \
//       -malloc_limit_mb=256 -rss_limit_mb=2048 fuzz-work tests/data/fuzz/corpus_image
//
// -malloc_limit_mb catches any single allocation a small input can force: it found a 70-byte
// PNG whose text chunk declared 1.6 GB, which libpng allocated before reading.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "io/png.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string bytes(reinterpret_cast<const char*>(data), size);
    try {
        // A small limit: a 64-KB input may declare gigapixels, and the check must hold; within
        // it the decoder allocates what the header declares (up to 3 MB here), which ASan's
        // quarantine then holds, hence quarantine_size_mb below.
        const igan::Image image = igan::decode_image(bytes, "fuzz", int64_t{1} << 20);
        if (image.channels != 3 ||
            image.pixels.size() != size_t(image.width * image.height * 3))
            std::abort();
    } catch (const igan::Error&) {
    }
    return 0;
}
