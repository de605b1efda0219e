// Micro-benchmarks of the generator's layers at inference, one thread as each concurrent pass
// runs them. The upsampling layer (3x3 transposed convolution, stride 2, then the [1,2,1]
// blur): LibTorch's transposed convolution, igan's banded tap planes (UpLayer) and channels-last
// form (UpLayerChannelsLast; UpStyledConv adds noise and activation as StyledConv runs them),
// the banded form's matrix product alone through igan's GEMM and through LibTorch's BLAS
// (OpenBLAS), and a plain 3x3 convolution of the same channels; tiny's 3x3 StyledConvs on NCHW
// and channels-last inputs; tiny's structure synthesizer and ToRGB convolutions, igan's way and
// LibTorch's; a whole tiny tile's forward pass (TinyTile); paper's up StyledConvs by tap planes
// and by Winograd (PaperUpStyledConv); then
// paper's plain 3x3 layers directly and by Winograd (model/winograd.h), on 1 or 2 threads.
// Counters: GFLOP/s of the layer's MACs (9 per input pixel and output channel for the up
// layer) and `of_peak`, that rate over the in-run peak: a 3x3 512->512 convolution on a 64x64
// map on one thread, timed in this process before the benchmarks (the context's peak_gflops;
// the last line gives it again, measured after them). Rates are per process CPU second, as
// Google Benchmark's are, so other processes' time slices do not count.
//   build/igan_layer_bench --benchmark_min_time=0.3
//   OPENBLAS_CORETYPE=Haswell build/igan_layer_bench ...   # OpenBLAS pinned to AVX2 kernels
//   build/igan_layer_bench --benchmark_filter=Conv3x3 --benchmark_repetitions=3
//       --benchmark_enable_random_interleaving=true   # (one line) direct and Winograd in turn
#include <benchmark/benchmark.h>

#include <malloc.h>
#include <time.h>

#include <algorithm>

#include "core/threads.h"
#include "model/gemm.h"
#include "model/generator.h"
#include "model/layers.h"
#include "model/upsample_channels_last.h"
#include "model/winograd.h"
#include "model/winograd_up.h"

namespace {

namespace F = torch::nn::functional;

struct Shape {
    int64_t in, out, size;
};
// tiny's ts2 and ts4, paper's ts4, ts0 and ts2 (tile 256).
const Shape kShapes[] = {
    {64, 64, 71}, {64, 32, 137}, {512, 512, 73}, {256, 512, 22}, {512, 512, 39}};

double g_peak_gflops = 0;

void one_thread() {
    at::set_num_threads(1);
    igan::set_blas_threads(1);
}

// Process CPU time, as Google Benchmark's rates use: on this shared machine it leaves out the
// time slices other processes take.
double cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

double conv_peak_gflops() {
    one_thread();
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({1, 512, 64, 64}), w = torch::randn({512, 512, 3, 3});
    std::vector<double> t;
    for (int i = 0; i < 6; ++i) {
        const double start = cpu_seconds();
        F::conv2d(x, w);
        t.push_back(cpu_seconds() - start);
    }
    std::sort(t.begin() + 1, t.end());  // the first run warms up
    return 2e-9 * 512 * 512 * 9 * 62 * 62 / t[3];
}

// GFLOP/s and the fraction of the in-run peak for `map` x `map` positions of 9 MACs.
void set_flops(benchmark::State& state, const Shape& s, int64_t map) {
    const double gflop = 2e-9 * double(s.in) * s.out * 9 * map * map;
    state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["of_peak"] =
        benchmark::Counter(gflop / g_peak_gflops, benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(std::to_string(s.in) + "->" + std::to_string(s.out) + " @" +
                   std::to_string(s.size));
}

template <typename Fn>
void run(benchmark::State& state, Fn&& layer,
         at::MemoryFormat format = at::MemoryFormat::Contiguous) {
    one_thread();
    torch::NoGradGuard no_grad;
    const Shape s = kShapes[state.range(0)];
    const auto x = torch::randn({1, s.in, s.size, s.size}).contiguous(format);
    const auto w = torch::randn({s.out, s.in, 3, 3}) / std::sqrt(9.0 * s.in);
    for (auto _ : state) benchmark::DoNotOptimize(layer(x, w));
    set_flops(state, s, s.size);
}

void TransposedConvThenBlur(benchmark::State& state) {
    run(state, [](const torch::Tensor& x, const torch::Tensor& w) {
        return igan::blur3_valid(igan::conv_transpose2x_cropped(x, w), 4.0);
    });
}

// The layer as igan runs it: band by band and block of channels by block, product then
// tap-row sums and blur (arguments: shape, band columns, channels per block; 0: defaults,
// 4096: every channel in one block).
void UpLayer(benchmark::State& state) {
    const int64_t columns = state.range(1), block = state.range(2);
    run(state, [columns, block](const torch::Tensor& x, const torch::Tensor& w) {
        return igan::upsample2x_blur(x, w, 4.0, columns, block);
    });
}

// The channels-last form on a channels-last input, `band rows` input rows at a time (0: the
// default).
void UpLayerChannelsLast(benchmark::State& state) {
    const int64_t rows = state.range(1);
    run(state, [rows](const torch::Tensor& x, const torch::Tensor& w) {
        return igan::upsample2x_blur_channels_last(x, w, 4.0, rows);
    }, at::MemoryFormat::ChannelsLast);
}

// The whole StyledConv as the render runs it: modulation, the layer above (channels-last for
// tiny's shapes, whose input the 3x3 layer before gives in that layout), noise, bias and
// activation.
void UpStyledConv(benchmark::State& state) {
    one_thread();
    torch::NoGradGuard no_grad;
    const Shape s = kShapes[state.range(0)];
    igan::StyledConv layer(s.in, s.out, 3, 64, true, true);
    layer->noise->weight.fill_(0.1);
    const auto x = torch::randn({1, s.in, s.size, s.size})
                       .contiguous(igan::upsample_channels_last_suits(s.in, s.out)
                                       ? at::MemoryFormat::ChannelsLast
                                       : at::MemoryFormat::Contiguous);
    const auto style = torch::randn({1, 64});
    const auto noise = torch::randn({1, 1, 2 * s.size - 3, 2 * s.size - 3});
    for (auto _ : state) benchmark::DoNotOptimize(layer(x, style, noise));
    set_flops(state, s, s.size);
}

// tiny's 3x3 StyledConvs (64 -> 64 @139, 32 -> 32 @271) whole, on an NCHW input (argument 0)
// or a channels-last one (1), as the narrow up layers before them give it.
void StyledConv3x3(benchmark::State& state) {
    one_thread();
    torch::NoGradGuard no_grad;
    const Shape s = state.range(0) == 0 ? Shape{64, 64, 139} : Shape{32, 32, 271};
    igan::StyledConv layer(s.in, s.out, 3, 64, false, true);
    layer->noise->weight.fill_(0.1);
    const auto x = torch::randn({1, s.in, s.size, s.size})
                       .contiguous(state.range(1) ? at::MemoryFormat::ChannelsLast
                                                  : at::MemoryFormat::Contiguous);
    const auto style = torch::randn({1, 64}), noise = torch::randn({1, 1, s.size - 2, s.size - 2});
    for (auto _ : state) benchmark::DoNotOptimize(layer(x, style, noise));
    set_flops(state, s, s.size - 2);
}

// The layer's product alone, band by band as the layer runs it, by `gemm`.
template <typename Gemm>
void band_products(benchmark::State& state, const Gemm& gemm) {
    run(state, [&gemm](const torch::Tensor& x, const torch::Tensor& w) {
        const int64_t out = w.size(0), in = w.size(1), h = x.size(2), wd = x.size(3);
        const auto w9 = w.permute({0, 2, 3, 1}).reshape({out * 9, in}).contiguous();
        const int64_t rows = igan::upsample_band_rows(h, wd);
        auto taps = torch::empty({out * 9 * rows * wd});
        for (int64_t a = 0; a < h; a += rows) {
            const int64_t n = std::min(rows, h - a) * wd;
            gemm(w9, x[0].view({in, h * wd}).narrow(1, a * wd, n),
                 taps.narrow(0, 0, out * 9 * n).view({out * 9, n}));
        }
        return taps;
    });
}

void UpProduct(benchmark::State& state) {
    band_products(state, [](const torch::Tensor& a, const torch::Tensor& b, torch::Tensor c) {
        igan::sgemm(a.size(0), b.size(1), a.size(1), a.data_ptr<float>(), a.stride(0),
                    b.data_ptr<float>(), b.stride(0), c.data_ptr<float>(), c.stride(0));
    });
}

// The same through LibTorch's BLAS: what the layer used before oneDNN.
void UpProductTorchMm(benchmark::State& state) {
    band_products(state, [](const torch::Tensor& a, const torch::Tensor& b, torch::Tensor c) {
        torch::mm_out(c, a, b);
    });
}

// The yardstick: a plain 3x3 convolution on the upsampled map's size.
void PlainConv3x3(benchmark::State& state) {
    one_thread();
    torch::NoGradGuard no_grad;
    const Shape s = kShapes[state.range(0)];
    const auto x = torch::randn({1, s.in, 2 * s.size, 2 * s.size});
    const auto w = torch::randn({s.out, s.in, 3, 3});
    for (auto _ : state) benchmark::DoNotOptimize(F::conv2d(x, w));
    set_flops(state, s, 2 * s.size - 2);
}

// tiny's other convolutions (modulated, one style): a structure synthesizer layer (7x7, 32 latent
// + 3 coordinate channels) and two ToRGBs (1x1 to 3 channels).
struct SmallConv {
    int64_t in, out, kernel, size;
};
const SmallConv kSmallConvs[] = {{35, 32, 7, 62}, {64, 3, 1, 137}, {32, 3, 1, 269}};

template <typename Fn>
void small_conv(benchmark::State& state, Fn&& conv,
                at::MemoryFormat format = at::MemoryFormat::Contiguous) {
    one_thread();
    torch::NoGradGuard no_grad;
    const SmallConv s = kSmallConvs[state.range(0)];
    igan::ModulatedConv2d layer(s.in, s.out, s.kernel, 64, s.kernel > 1, false);
    const auto x = torch::randn({1, s.in, s.size, s.size}).contiguous(format);
    const auto style = torch::randn({1, 64});
    for (auto _ : state) benchmark::DoNotOptimize(conv(layer, x, style));
    const int64_t o = s.size - s.kernel + 1;
    const double gflop = 2e-9 * double(s.in) * s.out * s.kernel * s.kernel * o * o;
    state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["of_peak"] =
        benchmark::Counter(gflop / g_peak_gflops, benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(std::to_string(s.in) + "->" + std::to_string(s.out) + " " +
                   std::to_string(s.kernel) + "x" + std::to_string(s.kernel) + " @" +
                   std::to_string(s.size));
}

// As igan runs them (ModulatedConv2d at inference).
void SmallConvIgan(benchmark::State& state) {
    small_conv(state, [](igan::ModulatedConv2d& layer, const torch::Tensor& x,
                         const torch::Tensor& style) { return layer(x, style); });
}

// The same on a channels-last input, as tiny's ToRGBs get it from the layers before them.
void SmallConvIganChannelsLast(benchmark::State& state) {
    small_conv(state, [](igan::ModulatedConv2d& layer, const torch::Tensor& x,
                         const torch::Tensor& style) { return layer(x, style); },
               at::MemoryFormat::ChannelsLast);
}

// A whole tiny tile of 256 px (a 38-cell z_S window) through the generator on one thread:
// everything a render pass does but draw its fields and deliver its pixels.
void TinyTile(benchmark::State& state) {
    one_thread();
    torch::NoGradGuard no_grad;
    torch::manual_seed(2);
    const auto config = igan::preset_config("tiny").generator;
    igan::Generator g(config);
    g->eval();
    const int64_t n = 38, side = n + 2 * config.ss_margin();
    const auto z = torch::randn({1, 2, config.global_latent_dim});
    const auto local = torch::randn({1, config.local_latent_dim, side, side});
    const auto coords = torch::randn({1, 3, side, side});
    std::vector<torch::Tensor> noises;
    for (int64_t size : igan::ts_output_sizes(config, n)) noises.push_back(torch::randn({1, 1, size, size}));
    for (auto _ : state) benchmark::DoNotOptimize(g->forward(z, local, coords, noises).image);
    const double gflop = 2e-9 * igan::generator_macs(config, n);
    state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["of_peak"] =
        benchmark::Counter(gflop / g_peak_gflops, benchmark::Counter::kIsIterationInvariantRate);
}

// The same folded weights through LibTorch's NCHW convolution.
void SmallConvLibTorch(benchmark::State& state) {
    small_conv(state, [](igan::ModulatedConv2d& layer, const torch::Tensor& x,
                         const torch::Tensor& style) {
        return F::conv2d(x, layer->folded_weight(style));
    });
}

// paper's plain 3x3 layers at tile 256: 512 -> 512 on inputs of 41, 75, 143 and 279 pixels
// square. Arguments: size, threads (rates per process CPU second, spinning threads included),
// and for Winograd its band of tile rows (0: the default).
const int64_t kPaper3x3Sizes[] = {41, 75, 143, 279};

template <typename Conv>
void paper_conv3x3(benchmark::State& state, Conv&& conv) {
    const int threads = int(state.range(1));
    at::set_num_threads(threads);
    igan::set_blas_threads(threads);
    torch::NoGradGuard no_grad;
    torch::manual_seed(1);
    const int64_t n = kPaper3x3Sizes[state.range(0)];
    const auto x = torch::randn({1, 512, n, n});
    const auto w = torch::randn({512, 512, 3, 3}) / std::sqrt(9.0 * 512);
    const torch::Tensor y = conv(x, w);
    for (auto _ : state) benchmark::DoNotOptimize(conv(x, w));
    // Against the direct convolution: the largest absolute difference, and it over the largest
    // output magnitude.
    const auto direct = F::conv2d(x, w);
    const double err = (y - direct).abs().max().item<double>();
    state.counters["max_abs_err"] = err;
    state.counters["max_rel_err"] = err / direct.abs().max().item<double>();
    const Shape s{512, 512, n};
    set_flops(state, s, n - 2);
    state.counters["of_peak"] = benchmark::Counter(
        2e-9 * 512 * 512 * 9 * double(n - 2) * double(n - 2) / (g_peak_gflops * threads),
        benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel("512->512 @" + std::to_string(n) + ", " + std::to_string(threads) + " thr");
}

void Conv3x3Direct(benchmark::State& state) {
    paper_conv3x3(state, [](const torch::Tensor& x, const torch::Tensor& w) {
        return F::conv2d(x, w);
    });
}

void Conv3x3Winograd(benchmark::State& state) {
    if (!igan::winograd_conv3x3_available()) {
        state.SkipWithError("no Winograd convolution in this build or on this CPU");
        return;
    }
    const int64_t band = state.range(2);
    paper_conv3x3(state, [band](const torch::Tensor& x, const torch::Tensor& w) {
        return igan::winograd_conv3x3(x, w, band);
    });
}

// paper's up StyledConvs at tile 256 (ts0 256 -> 512 @22, ts2, ts4, ts6 512 -> 512 @39, 73,
// 141), whole as the render runs them, by the tap planes (argument 0) or Winograd (1)
// (model/winograd_up.h), on 1 or 2 threads (as igan bench --profile times them: rates per
// process CPU second, so threads waiting at barriers count); max_rel_err: the largest difference
// from the tap-plane form over the largest output magnitude.
struct PaperUp {
    int64_t in, out, size;
};
const PaperUp kPaperUps[] = {{256, 512, 22}, {512, 512, 39}, {512, 512, 73}, {512, 512, 141}};

void PaperUpStyledConv(benchmark::State& state) {
    const int threads = int(state.range(2));
    at::set_num_threads(threads);
    igan::set_blas_threads(threads);
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    const PaperUp p = kPaperUps[state.range(0)];
    igan::StyledConv layer(p.in, p.out, 3, 64, true, true);
    layer->noise->weight.fill_(0.1);
    const auto x = torch::randn({1, p.in, p.size, p.size});
    const auto style = torch::randn({1, 64});
    const auto noise = torch::randn({1, 1, 2 * p.size - 3, 2 * p.size - 3});
    const igan::UpForm previous = igan::cpu_up_form();
    igan::set_cpu_up_form(igan::UpForm::taps);
    const torch::Tensor taps = layer(x, style, noise);
    igan::set_cpu_up_form(state.range(1) ? igan::UpForm::winograd : igan::UpForm::taps);
    const torch::Tensor y = layer(x, style, noise);
    for (auto _ : state) benchmark::DoNotOptimize(layer(x, style, noise));
    igan::set_cpu_up_form(previous);
    state.counters["max_rel_err"] =
        (y - taps).abs().max().item<double>() / taps.abs().max().item<double>();
    set_flops(state, Shape{p.in, p.out, p.size}, p.size);
    state.SetLabel(std::to_string(p.in) + "->" + std::to_string(p.out) + " @" +
                   std::to_string(p.size) + ", " + std::to_string(threads) + " thr");
}

}  // namespace

BENCHMARK(TransposedConvThenBlur)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(UpLayer)
    ->ArgsProduct({{0, 1, 2}, {256, 1024, 4096}, {0}})
    ->ArgsProduct({{0, 1, 2}, {1024}, {4, 32, 4096}})
    ->ArgsProduct({{3, 4}, {1024}, {0, 8, 16, 64, 128}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(UpLayerChannelsLast)
    ->ArgsProduct({{0, 1}, {0, 1, 2, 6, 12}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(UpStyledConv)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(PaperUpStyledConv)
    ->ArgsProduct({{0, 1, 2, 3}, {0, 1}, {1, 2}})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(StyledConv3x3)->ArgsProduct({{0, 1}, {0, 1}})->Unit(benchmark::kMillisecond);
BENCHMARK(UpProduct)->DenseRange(0, 4)->Unit(benchmark::kMillisecond);
BENCHMARK(UpProductTorchMm)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(PlainConv3x3)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(SmallConvIgan)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(SmallConvIganChannelsLast)->DenseRange(1, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(TinyTile)->Unit(benchmark::kMillisecond);
BENCHMARK(SmallConvLibTorch)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);
BENCHMARK(Conv3x3Direct)
    ->ArgsProduct({{0, 1, 2, 3}, {1, 2}})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(Conv3x3Winograd)
    ->ArgsProduct({{0, 1, 2, 3}, {1, 2}, {0}})
    ->ArgsProduct({{2, 3}, {1}, {4, 8, 16, 72}})
    ->MeasureProcessCPUTime()
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
    // As igan's main does: activations stay in the heap instead of fresh mappings whose pages
    // fault in again on every call.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    g_peak_gflops = conv_peak_gflops();
    benchmark::AddCustomContext("peak_gflops", std::to_string(g_peak_gflops));
    benchmark::AddCustomContext("up_layer_gemm", igan::sgemm_backend());
    benchmark::RunSpecifiedBenchmarks();
    std::printf("in-run peak (3x3 512->512 @64, 1 thread): %.1f GFLOP/s before, %.1f after\n",
                g_peak_gflops, conv_peak_gflops());
    benchmark::Shutdown();
    return 0;
}
