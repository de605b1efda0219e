#include "model/winograd_up.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>

#include "core/env_choice.h"
#include "model/gemm.h"
#include "model/row_kernels.h"

// The transforms' channel loops for AVX-512, AVX2 and baseline x86-64, chosen at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define IGAN_WINOGRAD_UP_KERNEL \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define IGAN_WINOGRAD_UP_KERNEL
#endif

namespace igan {

namespace {

// Where `automatic` takes Winograd (igan_layer_bench PaperUpStyledConv, one thread): 1.35x the
// tap planes at paper's 141-px input, even at 73 px; the weight transform (36 matrices of
// out x in, 5-7 ms at 512 channels) made it slower on 22- and 39-px inputs.
constexpr int64_t kWinogradUpMinChannels = 128;
constexpr int64_t kWinogradUpMinSide = 64;

// Unset means taps: on the idle 2-core machine a whole paper render measured the same with
// `automatic` (0.068-0.070 MP/s both; ts6 up 0.256 s against the taps' 0.228 s on 2 threads,
// where the transforms share memory bandwidth) for ~84 MB more per pass (bench/README.md).
std::atomic<UpForm>& form_in_use() {
    static std::atomic<UpForm> form =
        env_choice("IGAN_CPU_UP", UpForm::taps,
                   {UpForm::automatic, UpForm::taps, UpForm::winograd}, up_form_name);
    return form;
}

}  // namespace

UpForm cpu_up_form() { return form_in_use().load(); }

void set_cpu_up_form(UpForm form) { form_in_use().store(form); }

const char* up_form_name(UpForm form) {
    switch (form) {
        case UpForm::taps:
            return "taps";
        case UpForm::winograd:
            return "winograd";
        default:
            return "auto";
    }
}

bool winograd_up_suits(int64_t in, int64_t out, int64_t h, int64_t w) {
    const UpForm form = cpu_up_form();
    if (form == UpForm::taps) return false;
    return form == UpForm::winograd ||
           (std::min(in, out) >= kWinogradUpMinChannels && std::min(h, w) >= kWinogradUpMinSide);
}

namespace {

constexpr int kM = 4;             // input pixels per tile side (F(4, 2))
constexpr int kN = kM + 1;        // F(4, 2)'s points; input pixels per tile side with the halo
constexpr int kP = 2 * kM + 1;    // points along an axis: kM of the even phase, kN of the odd
constexpr int kClasses = kM + 2;  // weight transforms along an axis: the even phase's, kN odd
constexpr int kGroups = kClasses * kClasses;  // distinct weight matrices
constexpr int64_t kChunk = 64;    // output channels per strip (2 kM upsampled rows, in L2)
// Tiles per band: every product then has at least this many rows.
constexpr int64_t kBandTiles = 128;

// F(4, 2) on the points 0, 1, -1, 2 and infinity, by Toom-Cook (the correlation
// y_p = g0 x_p + g1 x_{p+1} is the transpose of a linear convolution): the input transform's
// rows are the coefficients of prod over the other finite points a_l of (x - a_l), exact small
// integers; evaluation gives the outputs'; each point's 1 / prod (a_j - a_l) (2, -2, -6, 6) goes
// into the weight transform, taken in double.
constexpr float kBt[kN][kN] = {{2, -1, -2, 1, 0},
                               {0, -2, -1, 1, 0},
                               {0, 2, -3, 1, 0},
                               {0, -1, 0, 1, 0},
                               {0, 2, -1, -2, 1}};
constexpr float kAt[kM][kN] = {{1, 1, 1, 1, 0}, {0, 1, -1, 2, 0}, {0, 1, 1, 4, 0}, {0, 1, -1, 8, 1}};
// Weight of class c along an axis: sum_k kTaps[c][k] w_k. The even phase takes tap 1; the odd
// phase's point j takes (g0 = w2, g1 = w0) as (1, a_j) / prod (a_j - a_l), infinity g1 alone.
constexpr double kTaps[kClasses][3] = {{0, 1, 0},          {0, 0, 1.0 / 2},
                                       {-1.0 / 2, 0, -1.0 / 2}, {1.0 / 6, 0, -1.0 / 6},
                                       {1.0 / 3, 0, 1.0 / 6},   {1, 0, 0}};

// Point i along an axis: the even phase's i < kM (weight tap 1 alone), else the odd phase's
// Winograd point i - kM. Its class: 0 for the even phase, 1 + point for the odd one.
constexpr int point_class(int i) { return i < kM ? 0 : 1 + i - kM; }

// Sixteen channels, loaded and stored unaligned; the baseline clone splits them into SSE
// quarters. (Only inlined helpers pass them by value, so no ABI is involved.)
#pragma GCC diagnostic ignored "-Wpsabi"
typedef float Vec16 __attribute__((vector_size(64)));

template <typename V>
[[gnu::always_inline]] inline V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

template <typename V>
[[gnu::always_inline]] inline void store(float* p, const V& v) {
    std::memcpy(p, &v, sizeof v);
}

// sum_l k[l] x[l] over the nonzero constants k (the loops unroll, so the zeros drop out).
template <typename V, int kLen>
[[gnu::always_inline]] inline V dot(const float (&k)[kLen], const V* x) {
    V acc{};
    bool first = true;
#pragma GCC unroll 8
    for (int l = 0; l < kLen; ++l) {
        if (k[l] == 0) continue;
        const V term = k[l] == 1 ? x[l] : k[l] == -1 ? -x[l] : x[l] * k[l];
        if (first)
            acc = term;
        else if (k[l] == -1)
            acc -= x[l];
        else
            acc += term;
        first = false;
    }
    return acc;
}

// One tile's input transform for one vector (or one float) of channels: x at the tile's first
// pixel (pixels `pixel` floats apart, rows `row` apart); point (i, j) to v + (i kP + j) * stride.
template <typename V>
[[gnu::always_inline]] inline void input_point(const float* x, int64_t row, int64_t pixel,
                                               float* v, int64_t stride) {
    V r[kP][kN];  // r[j][y]: input row y transformed along the row, point j
#pragma GCC unroll 8
    for (int y = 0; y < kN; ++y) {
        V xs[kN];
#pragma GCC unroll 8
        for (int l = 0; l < kN; ++l) xs[l] = load<V>(x + y * row + l * pixel);
#pragma GCC unroll 8
        for (int j = 0; j < kM; ++j) r[j][y] = xs[j];
#pragma GCC unroll 8
        for (int q = 0; q < kN; ++q) r[kM + q][y] = dot<V, kN>(kBt[q], xs);
    }
#pragma GCC unroll 16
    for (int j = 0; j < kP; ++j) {
#pragma GCC unroll 8
        for (int i = 0; i < kM; ++i) store(v + (i * kP + j) * stride, r[j][i]);
#pragma GCC unroll 8
        for (int q = 0; q < kN; ++q) store(v + ((kM + q) * kP + j) * stride, dot<V, kN>(kBt[q], r[j]));
    }
}

// The input transform of n channels (whole vectors, then single ones).
IGAN_WINOGRAD_UP_KERNEL
void input_tile(const float* x, int64_t row, int64_t pixel, int64_t n, float* v, int64_t stride) {
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) input_point<Vec16>(x + c, row, pixel, v + c, stride);
    for (; c < n; ++c) input_point<float>(x + c, row, pixel, v + c, stride);
}

// One tile's output transform for one vector (or one float) of channels: the products of point
// (i, j) at m + (i kP + j) * stride; the 2 kM x 2 kM upsampled pixels to u (pixels `pixel`
// floats apart, rows `row` apart).
template <typename V>
[[gnu::always_inline]] inline void output_point(const float* m, int64_t stride, float* u,
                                                int64_t row, int64_t pixel) {
    V cols[2 * kM][kP];  // cols[x][i]: row i of points transformed along the row, column x
#pragma GCC unroll 16
    for (int i = 0; i < kP; ++i) {
        V ms[kP];
#pragma GCC unroll 16
        for (int j = 0; j < kP; ++j) ms[j] = load<V>(m + (i * kP + j) * stride);
#pragma GCC unroll 8
        for (int p = 0; p < kM; ++p) {
            cols[2 * p][i] = ms[p];  // even columns: the even phase's points
            cols[2 * p + 1][i] = dot<V, kN>(kAt[p], ms + kM);
        }
    }
#pragma GCC unroll 16
    for (int x = 0; x < 2 * kM; ++x)
#pragma GCC unroll 8
        for (int p = 0; p < kM; ++p) {
            store(u + 2 * p * row + x * pixel, cols[x][p]);
            store(u + (2 * p + 1) * row + x * pixel, dot<V, kN>(kAt[p], cols[x] + kM));
        }
}

IGAN_WINOGRAD_UP_KERNEL
void output_tile(const float* m, int64_t stride, int64_t n, float* u, int64_t row, int64_t pixel) {
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) output_point<Vec16>(m + c, stride, u + c, row, pixel);
    for (; c < n; ++c) output_point<float>(m + c, stride, u + c, row, pixel);
}

// The [1,2,1] blur along a channels-last row: `pixels` outputs from pixels + 2 inputs.
IGAN_WINOGRAD_UP_KERNEL
void blur_along_row(const float* __restrict u, int64_t pixels, int64_t n, int64_t stride,
                    float* __restrict out) {
    for (int64_t p = 0; p < pixels; ++p) {
        const float* a = u + p * stride;
        float* d = out + p * stride;
        for (int64_t c = 0; c < n; ++c) d[c] = a[stride + c] * 2.0f + a[c] + a[2 * stride + c];
    }
}

// Input row y of image b, channels innermost, into dst (wd pixels of `in` floats).
void row_channels_last(const torch::Tensor& x, int64_t b, int64_t y, float* dst) {
    const int64_t in = x.size(1), wd = x.size(3), sc = x.stride(1), sx = x.stride(3);
    const float* src = x.data_ptr<float>() + b * x.stride(0) + y * x.stride(2);
    if (sc == 1 && sx == in) {
        std::memcpy(dst, src, size_t(wd * in) * sizeof(float));
        return;
    }
    constexpr int64_t kBlock = 16;  // a block of channels by pixels, both in L1
    for (int64_t c0 = 0; c0 < in; c0 += kBlock)
        for (int64_t x0 = 0; x0 < wd; x0 += kBlock)
            for (int64_t c = c0; c < std::min(c0 + kBlock, in); ++c)
                for (int64_t p = x0; p < std::min(x0 + kBlock, wd); ++p)
                    dst[p * in + c] = src[c * sc + p * sx];
}

}  // namespace

torch::Tensor upsample2x_blur_winograd(const torch::Tensor& x, const torch::Tensor& w,
                                       double gain, int64_t band_tile_rows,
                                       const UpsampleEpilogue* epilogue) {
    TORCH_CHECK(x.is_cpu() && x.scalar_type() == torch::kFloat && !torch::GradMode::is_enabled() &&
                    x.dim() == 4 && x.size(2) >= 2 && x.size(3) >= 2 && w.dim() == 4 &&
                    w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3 && w.is_cpu() &&
                    w.scalar_type() == torch::kFloat,
                "upsample2x_blur_winograd needs float CPU (B, in, H >= 2, W >= 2) and (out, in, "
                "3, 3) without gradients, got ", x.sizes(), " and ", w.sizes());
    const int64_t batch = x.size(0), in = x.size(1), out = w.size(0), h = x.size(2),
                  wd = x.size(3), uh = 2 * h - 1, oh = 2 * h - 3, ow = 2 * wd - 3;
    // Tile (ty, tx) makes upsampled rows and columns from 2 kM ty and 2 kM tx, out of 2h - 1.
    const int64_t tw = (wd + kM - 1) / kM, th = (h + kM - 1) / kM;
    const int64_t band = std::clamp<int64_t>(
        band_tile_rows > 0 ? band_tile_rows : (kBandTiles + tw - 1) / tw, 1, th);
    const int64_t xw = tw * kM + 1, uw = tw * 2 * kM;  // band input and upsampled row pixels

    // The weights of each group: sum of kTaps[row class][ky] kTaps[col class][kx] w[ky][kx], as
    // out x in matrices (the folded weights' tap order, so each is a pass along rows of w).
    const auto wt = w.permute({0, 2, 3, 1}).contiguous();  // (out, ky, kx, in)
    auto u = torch::empty({kGroups, out, in});
    const int64_t plane = out * in;
    at::parallel_for(0, kGroups * out, 1, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {  // output channel o's nine tap rows stay in L1
            const int64_t o = r / kGroups, g = r % kGroups;
            float* d = u.data_ptr<float>() + (g * out + o) * in;
            std::fill_n(d, in, 0.0f);
            for (int ky = 0; ky < 3; ++ky)
                for (int kx = 0; kx < 3; ++kx) {
                    const float f = float(kTaps[g / kClasses][ky] * kTaps[g % kClasses][kx]);
                    if (f == 0) continue;
                    const float* s = wt.data_ptr<float>() + (o * 9 + ky * 3 + kx) * in;
                    for (int64_t k = 0; k < in; ++k) d[k] += f * s[k];
                }
        }
    });
    const int64_t max_tiles = band * tw;
    auto xbuf = torch::empty({(band * kM + 1) * xw * in});
    auto vbuf = torch::empty({kP * kP * max_tiles * in});
    auto mbuf = torch::empty({kP * kP * max_tiles * out});
    const int64_t chunks = (out + kChunk - 1) / kChunk;
    // Per chunk of channels, the last three upsampled rows blurred along the row.
    auto ring = torch::empty({chunks * 3 * ow * kChunk});
    float *xs = xbuf.data_ptr<float>(), *vs = vbuf.data_ptr<float>(), *ms = mbuf.data_ptr<float>(),
          *rs = ring.data_ptr<float>();
    auto y = torch::empty({batch, out, oh, ow},
                          x.options().memory_format(at::MemoryFormat::ChannelsLast));
    const float scale = float(gain / 16.0);
    const float* bias = epilogue ? epilogue->bias : nullptr;
    for (int64_t b = 0; b < batch; ++b) {
        float* yb = y.data_ptr<float>() + b * oh * ow * out;
        const float* noise = epilogue && epilogue->noise ? epilogue->noise + b * oh * ow : nullptr;
        for (int64_t t0 = 0; t0 < th; t0 += band) {
            const int64_t tb = std::min(band, th - t0), tiles = tb * tw;
            // The band's input rows channels-last, zero beyond the input's last row and column.
            at::parallel_for(0, tb * kM + 1, 1, [&](int64_t begin, int64_t end) {
                for (int64_t r = begin; r < end; ++r) {
                    float* d = xs + r * xw * in;
                    const int64_t yi = t0 * kM + r;
                    if (yi >= h) {
                        std::fill_n(d, xw * in, 0.0f);
                        continue;
                    }
                    row_channels_last(x, b, yi, d);
                    std::fill_n(d + wd * in, (xw - wd) * in, 0.0f);
                }
            });
            at::parallel_for(0, tiles, 1, [&](int64_t begin, int64_t end) {
                for (int64_t k = begin; k < end; ++k) {
                    const float* xt = xs + ((k / tw) * kM * xw + (k % tw) * kM) * in;
                    input_tile(xt, xw * in, in, in, vs + k * kP * kP * in, in);
                }
            });
            // One product per point, of its tiles by its group's weights.
            for (int i = 0; i < kP; ++i)
                for (int j = 0; j < kP; ++j) {
                    const int64_t p = i * kP + j, g = point_class(i) * kClasses + point_class(j);
                    sgemm(tiles, out, in, vs + p * in, kP * kP * in, u.data_ptr<float>() + g * plane,
                          in, ms + p * out, kP * kP * out, true);
                }
            // Per chunk of channels and tile row: the output transform into a strip of 2 kM
            // upsampled rows (that chunk's channels only, so it stays in L2), blurred along each
            // row into the chunk's window of three, then across rows with noise, bias and
            // activation: one output row per upsampled row from the third on.
            at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
                std::unique_ptr<float[]> strip(new float[size_t(2 * kM * uw * kChunk)]);
                for (int64_t chunk = begin; chunk < end; ++chunk) {
                    const int64_t c0 = chunk * kChunk, n = std::min(kChunk, out - c0);
                    float* window = rs + chunk * 3 * ow * kChunk;
                    auto slot = [&](int64_t r) { return window + (r % 3) * ow * kChunk; };
                    for (int64_t ty = 0; ty < tb; ++ty) {
                        for (int64_t tx = 0; tx < tw; ++tx) {
                            const int64_t k = ty * tw + tx;
                            // The next tile's products, from memory while this one is summed:
                            // 81 short streams that the hardware prefetchers do not follow.
                            if (tx + 1 < tw)
                                for (int64_t p = 0; p < kP * kP; ++p)
                                    for (int64_t l = 0; l < n; l += 16)
                                        __builtin_prefetch(ms + ((k + 1) * kP * kP + p) * out + c0 + l);
                            output_tile(ms + k * kP * kP * out + c0, out, n,
                                        strip.get() + tx * 2 * kM * kChunk, uw * kChunk, kChunk);
                        }
                        const int64_t u0 = (t0 + ty) * 2 * kM, u1 = std::min(uh, u0 + 2 * kM);
                        for (int64_t r = u0; r < u1; ++r) {
                            blur_along_row(strip.get() + (r - u0) * uw * kChunk, ow, n, kChunk, slot(r));
                            if (r < 2) continue;
                            blur_rows_channels_last(slot(r - 2), slot(r - 1), slot(r), ow, n, kChunk,
                                                    scale, noise ? noise + (r - 2) * ow : nullptr,
                                                    epilogue ? epilogue->noise_weight : 0.0f,
                                                    bias ? bias + c0 : nullptr,
                                                    yb + (r - 2) * ow * out + c0, out);
                        }
                    }
                }
            });
        }
    }
    return y;
}

}  // namespace igan
