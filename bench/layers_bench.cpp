// Micro-benchmarks of the generator's upsampling layer (3x3 transposed convolution, stride 2,
// then the [1,2,1] blur) at inference, one thread as each concurrent pass runs it: LibTorch's
// transposed convolution, the whole layer's tap planes, and the banded tap planes igan uses,
// with a plain 3x3 convolution of the same channels as the yardstick. Counters are GFLOP/s of
// the transposed convolution's 9 MACs per input pixel and output channel.
//   build/igan_layer_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "core/threads.h"
#include "model/layers.h"

namespace {

namespace F = torch::nn::functional;

struct Shape {
    int64_t in, out, size;
};
// tiny's ts2 and ts4, and paper's ts4 (tile 256).
const Shape kShapes[] = {{64, 64, 71}, {64, 32, 137}, {512, 512, 73}};

void set_flops(benchmark::State& state, const Shape& s, int64_t map) {
    state.counters["GFLOP/s"] = benchmark::Counter(
        2e-9 * double(s.in) * s.out * 9 * map * map, benchmark::Counter::kIsIterationInvariantRate);
}

template <typename Fn>
void run(benchmark::State& state, Fn&& layer) {
    at::set_num_threads(1);
    igan::set_blas_threads(1);
    torch::NoGradGuard no_grad;
    const Shape s = kShapes[state.range(0)];
    const auto x = torch::randn({1, s.in, s.size, s.size});
    const auto w = torch::randn({s.out, s.in, 3, 3}) / std::sqrt(9.0 * s.in);
    for (auto _ : state) benchmark::DoNotOptimize(layer(x, w));
    state.SetLabel(std::to_string(s.in) + "->" + std::to_string(s.out) + " @" +
                   std::to_string(s.size));
    set_flops(state, s, s.size);
}

void TransposedConvThenBlur(benchmark::State& state) {
    run(state, [](const torch::Tensor& x, const torch::Tensor& w) {
        return igan::blur3_valid(igan::conv_transpose2x_cropped(x, w), 4.0);
    });
}

void WholeLayerTapPlanes(benchmark::State& state) {
    run(state, [](const torch::Tensor& x, const torch::Tensor& w) {
        return igan::blur3_valid(igan::interleave_taps(igan::upsample_taps(x, w)), 4.0);
    });
}

void BandedTapPlanes(benchmark::State& state) {
    const int64_t columns = state.range(1);
    run(state, [columns](const torch::Tensor& x, const torch::Tensor& w) {
        return igan::upsample2x_blur(x, w, 4.0, columns);
    });
}

// The yardstick: a plain 3x3 convolution on the upsampled map's size.
void PlainConv3x3(benchmark::State& state) {
    at::set_num_threads(1);
    igan::set_blas_threads(1);
    torch::NoGradGuard no_grad;
    const Shape s = kShapes[state.range(0)];
    const auto x = torch::randn({1, s.in, 2 * s.size, 2 * s.size});
    const auto w = torch::randn({s.out, s.in, 3, 3});
    for (auto _ : state) benchmark::DoNotOptimize(F::conv2d(x, w));
    set_flops(state, s, 2 * s.size - 2);
}

}  // namespace

BENCHMARK(TransposedConvThenBlur)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(WholeLayerTapPlanes)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(BandedTapPlanes)
    ->ArgsProduct({{0, 1, 2}, {256, 1024, 4096}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(PlainConv3x3)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
