// PNG encoding of an 8192x1024 render-like image (smooth colour fields plus a few levels of
// noise, as rendered landscapes compress) at the level igan writes, on 1, 2, ... threads.
// Wall time (the bands run on threads of their own); the counter is megapixels per second.
//   build/igan_png_bench --benchmark_filter='/[12]/' --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "igan/image.h"

namespace {

constexpr int64_t kWidth = 8192, kHeight = 1024;

const std::vector<uint8_t>& image() {
    static const std::vector<uint8_t> rgb = [] {
        std::vector<uint8_t> out(size_t(kWidth * kHeight * 3));
        uint32_t noise = 1;
        for (int64_t y = 0; y < kHeight; ++y)
            for (int64_t x = 0; x < kWidth; ++x)
                for (int c = 0; c < 3; ++c) {
                    noise = noise * 1664525u + 1013904223u;
                    const double v =
                        110 +
                        60 * std::sin(0.004 * x + 0.9 * c) * std::cos(0.006 * y - 0.0007 * x) +
                        25 * std::sin(0.05 * x + 0.03 * y * (c + 1)) + (noise >> 29);
                    out[size_t((y * kWidth + x) * 3 + c)] = uint8_t(std::clamp(v, 0.0, 255.0));
                }
        return out;
    }();
    return rgb;
}

void EncodePng(benchmark::State& state) {
    const auto& rgb = image();
    const int threads = int(state.range(0));
    size_t bytes = 0;
    for (auto _ : state) bytes = igan::encode_png(rgb.data(), kWidth, kHeight, threads).size();
    state.counters["MP/s"] = benchmark::Counter(1e-6 * double(kWidth * kHeight),
                                                benchmark::Counter::kIsIterationInvariantRate);
    state.counters["MB"] = double(bytes) * 1e-6;
}
BENCHMARK(EncodePng)->Arg(1)->Arg(2)->Arg(4)->Arg(8)->Arg(16)->UseRealTime()->Unit(
    benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
