#include "model/layers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <thread>

#include "core/env_choice.h"
#include "core/threads.h"
#include "model/gemm.h"
#include "model/precision.h"
#include "model/row_kernels.h"
#include "model/upsample_channels_last.h"
#include "model/winograd.h"
#include "model/winograd_up.h"

namespace igan {

namespace F = torch::nn::functional;

const double kSqrt2 = std::sqrt(2.0);

torch::Tensor fused_leaky_relu(const torch::Tensor& x, const torch::Tensor& bias) {
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = bias.size(0);
    return torch::leaky_relu(x + bias.view(shape), 0.2) * kSqrt2;
}

namespace {

// Inference kernels may run as plain loops over float CPU memory when nothing needs gradients.
bool plain_cpu_float(const torch::Tensor& t) {
    return t.is_cpu() && t.scalar_type() == torch::kFloat && !torch::GradMode::is_enabled() &&
           !t.requires_grad();
}

// A 4-D tensor laid out channels-last (the narrow texture layers' maps at inference), and not
// also NCHW-contiguous as a tensor with one channel or one pixel is.
bool only_channels_last(const torch::Tensor& t) {
    return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

// One output row of the [1,2,1] x [1,2,1] valid blur times `scale` from three consecutive input
// rows of w floats (v: w floats of scratch). The sums are blur3_valid's tensor ops' own,
// x1 * 2 + x0 + x2 in that order, so the results are bit-identical to them.
inline void blur_row(const float* x0, const float* x1, const float* x2, int64_t w, float scale,
                     float* v, float* out_row) {
    for (int64_t c = 0; c < w; ++c) v[c] = x1[c] * 2.0f + x0[c] + x2[c];
    for (int64_t c = 0; c < w - 2; ++c) out_row[c] = (v[c + 1] * 2.0f + v[c] + v[c + 2]) * scale;
}

// The valid blur, times gain / 16, of `planes` = batch x channels images of h x w whose rows
// row(plane, m, scratch) returns (pointing into the tensor, or filled into scratch, w floats).
template <typename RowFn>
torch::Tensor blur_planes(int64_t batch, int64_t channels, int64_t h, int64_t w, double gain,
                          const RowFn& row) {
    auto out = torch::empty({batch, channels, h - 2, w - 2});
    float* o = out.data_ptr<float>();
    const float scale = float(gain / 16.0);
    at::parallel_for(0, batch * channels, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> scratch(3 * static_cast<size_t>(w)), v(static_cast<size_t>(w));
        for (int64_t p = begin; p < end; ++p) {
            const float* x0 = row(p, 0, scratch.data());
            const float* x1 = row(p, 1, scratch.data() + w);
            float* dst = o + p * (h - 2) * (w - 2);
            for (int64_t r = 0; r < h - 2; ++r) {
                const float* x2 = row(p, r + 2, scratch.data() + ((r + 2) % 3) * w);
                blur_row(x0, x1, x2, w, scale, v.data(), dst + r * (w - 2));
                x0 = x1;
                x1 = x2;
            }
        }
    });
    return out;
}

}  // namespace

torch::Tensor blur3_valid(const torch::Tensor& x, double gain) {
    const int64_t h = x.size(-2), w = x.size(-1);
    if (!plain_cpu_float(x) || x.dim() != 4 || x.stride(3) != 1) {
        auto v = x.narrow(-2, 1, h - 2) * 2;
        v.add_(x.narrow(-2, 0, h - 2)).add_(x.narrow(-2, 2, h - 2));
        auto b = v.narrow(-1, 1, w - 2) * 2;
        b.add_(v.narrow(-1, 0, w - 2)).add_(v.narrow(-1, 2, w - 2));
        return b.mul_(gain / 16.0);
    }
    // One pass per plane instead of six tensor-sized ones (the layer is memory-bound).
    const int64_t channels = x.size(1), sb = x.stride(0), sc = x.stride(1), sr = x.stride(2);
    const float* in = x.data_ptr<float>();
    return blur_planes(x.size(0), channels, h, w, gain, [&](int64_t p, int64_t m, float*) {
        return in + (p / channels) * sb + (p % channels) * sc + m * sr;
    });
}

torch::Tensor center_crop(const torch::Tensor& x, int64_t h, int64_t w) {
    const int64_t dy = (x.size(-2) - h) / 2, dx = (x.size(-1) - w) / 2;
    return x.narrow(-2, dy, h).narrow(-1, dx, w);
}

torch::Tensor generator_blur_kernel() {
    auto k1 = torch::tensor({1.f, 2.f, 1.f});
    return torch::outer(k1, k1) / 16 * 4;
}

BiasActImpl::BiasActImpl(int64_t channels) {
    bias = register_parameter("bias", torch::zeros({channels}));
}

EqualLinearImpl::EqualLinearImpl(int64_t in, int64_t out, double lr_mul_, double bias_init,
                                 bool activate_)
    : lr_mul(lr_mul_), scale(lr_mul_ / std::sqrt(double(in))), activate(activate_) {
    weight = register_parameter("weight", torch::randn({out, in}) / lr_mul);
    bias = register_parameter("bias", torch::full({out}, bias_init));
}

torch::Tensor EqualLinearImpl::forward(const torch::Tensor& x) {
    if (activate) return fused_leaky_relu(F::linear(x, weight * scale), bias * lr_mul);
    return F::linear(x, weight * scale, bias * lr_mul);
}

ModulatedConv2dImpl::ModulatedConv2dImpl(int64_t in, int64_t out, int64_t kernel_,
                                         int64_t style_dim, bool demodulate_, bool upsample_)
    : in_channels(in), out_channels(out), kernel(kernel_), demodulate(demodulate_),
      upsample(upsample_), scale(1.0 / std::sqrt(double(in * kernel_ * kernel_))) {
    weight = register_parameter("weight", torch::randn({1, out, in, kernel, kernel}));
    modulation = register_module("modulation", EqualLinear(style_dim, in, 1.0, 1.0));
    if (upsample) blur = register_module("blur", KernelBuffer(generator_blur_kernel()));
}

torch::Tensor conv_transpose2x_cropped(const torch::Tensor& x, const torch::Tensor& w) {
    // Transposed conv gives 2H+1; one pixel per side is cropped (the valid blur then gives 2H-3).
    const auto y = F::conv_transpose2d(x, w.transpose(0, 1), F::ConvTranspose2dFuncOptions().stride(2));
    return y.narrow(-2, 1, y.size(-2) - 2).narrow(-1, 1, y.size(-1) - 2);
}

namespace {

// Along an axis, output 2p takes tap 1 at input p, and output 2p+1 tap 0 at p+1 plus tap 2 at
// p: per phase, a valid correlation by the sub-kernel (w[1]) or (w[2], w[0]).
torch::Tensor phase_kernel(const torch::Tensor& w, int64_t dim, bool odd) {
    return odd ? w.slice(dim, 0, 3, 2).flip({dim}) : w.narrow(dim, 1, 1);
}

torch::Tensor upsample_phases(const torch::Tensor& x, const torch::Tensor& w) {
    const int64_t h = x.size(2), wd = x.size(3);
    auto out = torch::empty({x.size(0), w.size(0), 2 * h - 1, 2 * wd - 1}, x.options());
    const auto xl = x.contiguous(at::MemoryFormat::ChannelsLast);
    for (int ry = 0; ry < 2; ++ry)
        for (int rx = 0; rx < 2; ++rx) {
            const auto k = phase_kernel(phase_kernel(w, 2, ry), 3, rx)
                               .contiguous(at::MemoryFormat::ChannelsLast);
            out.slice(2, ry, 2 * h - 1, 2).slice(3, rx, 2 * wd - 1, 2).copy_(F::conv2d(xl, k));
        }
    return out;
}

// The same sums as the phases, of the nine tap planes of one (batched) matrix product.
torch::Tensor upsample_tap_planes(const torch::Tensor& x, const torch::Tensor& w) {
    const int64_t b = x.size(0), in = x.size(1), h = x.size(2), wd = x.size(3), out = w.size(0);
    const auto w9 = w.permute({0, 2, 3, 1}).reshape({out * 9, in});
    const auto t = torch::matmul(w9, x.reshape({b, in, h * wd})).view({b, out, 3, 3, h, wd});
    // Tap (ky, kx) at input rows [r0, r0 + nr) and columns [c0, c0 + nc).
    auto tap = [&](int ky, int kx, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
        return t.select(2, ky).select(2, kx).narrow(2, r0, nr).narrow(3, c0, nc);
    };
    auto y = torch::empty({b, out, 2 * h - 1, 2 * wd - 1}, x.options());
    auto phase = [&](int ry, int rx) {
        return y.slice(2, ry, 2 * h - 1, 2).slice(3, rx, 2 * wd - 1, 2);
    };
    phase(0, 0).copy_(tap(1, 1, 0, h, 0, wd));
    phase(0, 1).copy_(tap(1, 0, 0, h, 1, wd - 1) + tap(1, 2, 0, h, 0, wd - 1));
    phase(1, 0).copy_(tap(0, 1, 1, h - 1, 0, wd) + tap(2, 1, 0, h - 1, 0, wd));
    phase(1, 1).copy_(tap(0, 0, 1, h - 1, 1, wd - 1) + tap(0, 2, 1, h - 1, 0, wd - 1) +
                      tap(2, 0, 0, h - 1, 1, wd - 1) + tap(2, 2, 0, h - 1, 0, wd - 1));
    return y;
}

}  // namespace

torch::Tensor upsample_conv_in_form(const torch::Tensor& x, const torch::Tensor& w,
                                    UpsampleForm form) {
    switch (form) {
        case UpsampleForm::phases: return upsample_phases(x, w);
        case UpsampleForm::taps: return upsample_tap_planes(x, w);
        default: return conv_transpose2x_cropped(x, w);
    }
}

const char* upsample_form_name(UpsampleForm form) {
    switch (form) {
        case UpsampleForm::phases: return "phases";
        case UpsampleForm::taps: return "taps";
        default: return "transpose";
    }
}

UpsampleForm cuda_upsample_form() {
    static const UpsampleForm form =
        env_choice("IGAN_CUDA_UP", UpsampleForm::phases,
                   {UpsampleForm::transpose, UpsampleForm::phases, UpsampleForm::taps},
                   upsample_form_name);
    return form;
}

namespace {

// Where one input row's nine tap rows (one output channel's) start: tap k's at first + k * stride.
struct TapRow {
    const float* first = nullptr;
    int64_t stride = 0;
};

// An odd or even row (2w-1 floats) of one channel's cropped transposed-convolution output:
// along an axis, even outputs 2p take tap 1 at p and odd outputs 2p+1 take tap 0 at p+1 plus
// tap 2 at p. Even rows come from input row p alone, odd ones from p and `next` (p+1).
void upsampled_row(TapRow row, TapRow next, bool odd, int64_t w, float* dst) {
    auto tap = [](TapRow r, int ky, int kx) { return r.first + (ky * 3 + kx) * r.stride; };
    if (!odd) {
        const float *c11 = tap(row, 1, 1), *c10 = tap(row, 1, 0), *c12 = tap(row, 1, 2);
        for (int64_t s = 0; s < w - 1; ++s) {
            dst[2 * s] = c11[s];
            dst[2 * s + 1] = c10[s + 1] + c12[s];
        }
        dst[2 * w - 2] = c11[w - 1];
        return;
    }
    const float *c01 = tap(next, 0, 1), *c21 = tap(row, 2, 1);
    const float *c00 = tap(next, 0, 0), *c02 = tap(next, 0, 2);
    const float *c20 = tap(row, 2, 0), *c22 = tap(row, 2, 2);
    for (int64_t s = 0; s < w - 1; ++s) {
        dst[2 * s] = c01[s] + c21[s];
        dst[2 * s + 1] = c00[s + 1] + c02[s] + c20[s + 1] + c22[s];
    }
    dst[2 * w - 2] = c01[w - 1] + c21[w - 1];
}

// A band of about this many input pixels keeps the GEMM efficient and its tap planes (nine per
// output channel) a fraction of the whole layer's; 256 and 4096 were slower (igan_layer_bench).
constexpr int64_t kUpsampleBandColumns = 1024;
// Channels of a band are multiplied and summed a block at a time, whose tap planes (this many
// floats) then stay in cache between the product and the sums.
constexpr int64_t kUpsampleBlockTapFloats = int64_t(1) << 17;

void check_taps(const torch::Tensor& taps) {
    TORCH_CHECK(plain_cpu_float(taps) && taps.dim() == 4 && taps.is_contiguous() &&
                    taps.size(1) % 9 == 0,
                "tap planes must be contiguous float CPU (B, 9 * out, H, W) without gradients, got ",
                taps.sizes());
}

// The modulated 3x3 weights (out, in, 3, 3) as the (9 * out) x in matrix whose product with
// an image's in x pixels gives every output channel's nine tap planes.
torch::Tensor tap_matrix(const torch::Tensor& w) {
    return w.permute({0, 2, 3, 1}).reshape({w.size(0) * 9, w.size(1)}).contiguous();
}

}  // namespace

torch::Tensor upsample_taps(const torch::Tensor& x, const torch::Tensor& w) {
    const int64_t out = w.size(0), in = w.size(1), h = x.size(2), wd = x.size(3);
    const auto w9 = tap_matrix(w);
    const auto xc = x.contiguous();
    auto taps = torch::empty({x.size(0), out * 9, h, wd});
    // One product per image: matmul's broadcast of a matrix over a batch runs 4-10x slower here.
    for (int64_t b = 0; b < x.size(0); ++b)
        sgemm(out * 9, h * wd, in, w9.data_ptr<float>(), in, xc[b].data_ptr<float>(), h * wd,
              taps[b].data_ptr<float>(), h * wd);
    return taps;
}

torch::Tensor interleave_taps(const torch::Tensor& taps) {
    check_taps(taps);
    const int64_t batch = taps.size(0), channels = taps.size(1) / 9, h = taps.size(2),
                  w = taps.size(3);
    auto out = torch::empty({batch, channels, 2 * h - 1, 2 * w - 1});
    const float* in = taps.data_ptr<float>();
    float* o = out.data_ptr<float>();
    at::parallel_for(0, batch * channels, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p)
            for (int64_t m = 0; m < 2 * h - 1; ++m) {
                const float* row = in + p * 9 * h * w + (m >> 1) * w;
                const bool odd = m & 1;
                upsampled_row({row, h * w}, odd ? TapRow{row + w, h * w} : TapRow{}, odd, w,
                              o + (p * (2 * h - 1) + m) * (2 * w - 1));
            }
    });
    return out;
}

int64_t upsample_band_rows(int64_t h, int64_t w, int64_t band_columns) {
    const int64_t columns = band_columns > 0 ? band_columns : kUpsampleBandColumns;
    return std::clamp<int64_t>((columns + w - 1) / w, 1, h);
}

int64_t upsample_channel_block(int64_t channels, int64_t band_columns, int64_t channel_block) {
    const int64_t block = channel_block > 0 ? channel_block
                                            : kUpsampleBlockTapFloats / (9 * band_columns);
    return std::clamp<int64_t>(block, 1, channels);
}

torch::Tensor upsample2x_blur(const torch::Tensor& x, const torch::Tensor& w, double gain,
                             int64_t band_columns, int64_t channel_block,
                             const UpsampleEpilogue* epilogue) {
    TORCH_CHECK(plain_cpu_float(x) && x.dim() == 4 && w.dim() == 4 && w.size(1) == x.size(1),
                "upsample2x_blur needs float CPU (B, in, H, W) and (out, in, 3, 3) without "
                "gradients, got ", x.sizes(), " and ", w.sizes());
    const int64_t batch = x.size(0), in = w.size(1), channels = w.size(0), h = x.size(2),
                  wd = x.size(3), uh = 2 * h - 1, uw = 2 * wd - 1, ow = uw - 2;
    const int64_t band_rows = upsample_band_rows(h, wd, band_columns);
    const int64_t block = upsample_channel_block(channels, band_rows * wd, channel_block);
    const auto w9 = tap_matrix(w);
    const float* w9p = w9.data_ptr<float>();
    const auto xc = x.contiguous();
    auto out = torch::empty({batch, channels, uh - 2, ow});
    float* o = out.data_ptr<float>();
    const float scale = float(gain / 16.0);
    // Per channel, tap row 2 of the band's last input row (the odd upsampled row between two
    // bands needs it) and the last three upsampled rows blurred along the row (the window of
    // the blur across rows), both kept from one band to the next.
    std::vector<float> carry(size_t(channels * 3 * wd)), window(size_t(channels * 3 * ow));
    // Work items are (image, band, block of channels), taken in that order by whichever thread
    // is free; each thread multiplies on its own (one thread per product) into its own tap
    // planes and sums them in its own core's cache, with one fork per layer. Splitting each
    // block's product and then its sums between the threads forked twice per block and moved
    // the planes between cores: paper's 22-39-px layers ran at 0.42-0.63 of the peak on 2
    // threads against 0.75-0.87 on one. Taken in order, a block's previous band is always
    // done or in hand, and a thread that is slowed (a shared core) takes fewer items.
    const int64_t blocks = (channels + block - 1) / block, bands = (h + band_rows - 1) / band_rows;
    const int64_t items = batch * bands * blocks;
    std::atomic<int64_t> next_item{0};
    // Per block, how many (image, band) steps are done: the carried rows are ready for the next.
    std::vector<std::atomic<int64_t>> steps_done(static_cast<size_t>(blocks));
    for (auto& d : steps_done) d.store(0, std::memory_order_relaxed);
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
        // The product's own threading (a different split of it) stays out, whatever the
        // thread count: the same bits on any number of threads.
        const IntraOpThreadsScope one_thread(1);
        // One block of channels' tap planes for one band: small enough to be summed from cache.
        std::vector<float> taps(size_t(block * 9 * band_rows * wd)), sums(size_t(3 * wd));
        std::unique_ptr<GemmRhs> band;  // this thread's packed input band
        int64_t band_step = -1;
        for (int64_t item = next_item++; item < items; item = next_item++) {
            const int64_t step = item / blocks, j = item % blocks;
            const int64_t b = step / bands, a = (step % bands) * band_rows;
            while (steps_done[size_t(j)].load(std::memory_order_acquire) < step)
                std::this_thread::yield();
            const int64_t rows = std::min(band_rows, h - a), n = rows * wd;
            if (step != band_step) {
                band = std::make_unique<GemmRhs>(xc.data_ptr<float>() + (b * in * h + a) * wd,
                                                 in, n, h * wd);
                band_step = step;
            }
            const int64_t first_row = a == 0 ? 0 : 2 * a - 1;  // the next upsampled row to make
            const int64_t end_row = 2 * (a + rows) - 1;        // rows up to 2 * (last input row)
            const int64_t c0 = j * block, cb = std::min(block, channels - c0);
            band->multiply(w9p + c0 * 9 * in, cb * 9, in, taps.data(), n);
            for (int64_t c = c0; c < c0 + cb; ++c) {
                float* kept = carry.data() + c * 3 * wd;
                // Tap (ky, kx) of input row r: this band's, or the carried row a - 1.
                auto tap = [&](int64_t r, int ky, int kx) -> const float* {
                    if (r < a) return kept + kx * wd;
                    return taps.data() + ((c - c0) * 9 + ky * 3 + kx) * n + (r - a) * wd;
                };
                float* rows3 = window.data() + c * 3 * ow;
                float* dst = o + (b * channels + c) * (uh - 2) * ow;
                for (int64_t m = first_row; m < end_row; ++m) {
                    // Along a column, even rows 2p take tap row 1 of input row p, odd rows 2p+1
                    // tap row 0 of p+1 plus tap row 2 of p (likewise along a row).
                    const int64_t p = m >> 1;
                    float* slot = rows3 + (m % 3) * ow;
                    if (m & 1) {
                        for (int kx = 0; kx < 3; ++kx)
                            add_rows(tap(p + 1, 0, kx), tap(p, 2, kx), wd, sums.data() + kx * wd);
                        upsampled_row_blur(sums.data(), sums.data() + wd, sums.data() + 2 * wd,
                                           wd, slot);
                    } else {
                        upsampled_row_blur(tap(p, 1, 0), tap(p, 1, 1), tap(p, 1, 2), wd, slot);
                    }
                    if (m < 2) continue;
                    float* out_row = dst + (m - 2) * ow;
                    blur_across_rows(rows3 + ((m - 2) % 3) * ow, rows3 + ((m - 1) % 3) * ow, slot,
                                     ow, scale, out_row);
                    if (epilogue) {  // while the row is in L1
                        const float* noise = epilogue->noise;
                        noise_bias_activate(out_row,
                                            noise ? noise + (b * (uh - 2) + m - 2) * ow : nullptr,
                                            epilogue->noise_weight, epilogue->bias[c], ow);
                    }
                }
                for (int kx = 0; kx < 3; ++kx)
                    std::copy_n(tap(a + rows - 1, 2, kx), wd, kept + kx * wd);
            }
            steps_done[size_t(j)].store(step + 1, std::memory_order_release);
        }
    });
    return out;
}

namespace {

// conv(x, w) at inference in this thread's convolution precision (model/precision.h): x and w
// converted to it, the result back to x's dtype. Training keeps its own dtype.
template <typename Conv>
torch::Tensor in_conv_precision(const torch::Tensor& x, const torch::Tensor& w, const Conv& conv) {
    const auto dtype = conv_dtype();
    if (dtype == x.scalar_type() || torch::GradMode::is_enabled()) return conv(x, w);
    return conv(x.to(dtype), w.to(dtype)).to(x.scalar_type());
}

// Float32 inference on the CPU, where igan's own kernels run.
bool own_cpu_kernels(const torch::Tensor& x) {
    return plain_cpu_float(x) && conv_dtype() == torch::kFloat;
}

// LibTorch runs a transposed convolution as the same matrix product followed by a scatter
// (col2im) into a fresh tensor; at inference the tap planes are summed straight into rows of
// the blur instead, on the CPU, and CUDA runs the form IGAN_CUDA_UP chooses. Training keeps
// LibTorch's form, which has gradients.
torch::Tensor upsample_conv(const torch::Tensor& x, const torch::Tensor& w) {
    return in_conv_precision(x, w, [](const torch::Tensor& a, const torch::Tensor& b) {
        if (plain_cpu_float(a)) return interleave_taps(upsample_taps(a, b));
        if (torch::GradMode::is_enabled()) return conv_transpose2x_cropped(a, b);
        if (a.is_cuda()) return upsample_conv_in_form(a, b, cuda_upsample_form());
        // LibTorch 1.13's CPU transposed convolution in bfloat16 goes to oneDNN's ordinary one,
        // which refuses the shapes: ordinary convolutions per phase instead.
        if (a.scalar_type() != torch::kFloat)
            return upsample_conv_in_form(a, b, UpsampleForm::phases);
        return conv_transpose2x_cropped(a, b);
    });
}

// Upsampling convolution then blur.
torch::Tensor upsample_blur(const torch::Tensor& x, const torch::Tensor& w, double gain) {
    if (own_cpu_kernels(x))
        return winograd_up_suits(x.size(1), w.size(0), x.size(2), x.size(3))
                   ? upsample2x_blur_winograd(x, w, gain)
                   : upsample2x_blur(x, w, gain);
    return blur3_valid(upsample_conv(x, w), gain);
}

torch::Tensor plain_conv(const torch::Tensor& x, const torch::Tensor& w) {
    return in_conv_precision(x, w, [](const torch::Tensor& a, const torch::Tensor& b) {
        return F::conv2d(a, b);
    });
}

}  // namespace

torch::Tensor ModulatedConv2dImpl::folded_weight(const torch::Tensor& style) {
    TORCH_CHECK(style.size(0) == 1, "folded_weight needs one style, got ", style.sizes());
    auto wm = weight[0] * scale * modulation(style).view({1, in_channels, 1, 1});
    if (demodulate) wm = wm * torch::rsqrt(wm.pow(2).sum({1, 2, 3}, true) + 1e-8);
    return wm;
}

torch::Tensor ModulatedConv2dImpl::folded_weight_tap_order(const torch::Tensor& style) {
    TORCH_CHECK(style.size(0) == 1 && plain_cpu_float(weight.detach()),
                "folded_weight_tap_order needs one style and float CPU weights at inference");
    const int64_t out = out_channels, in = in_channels, kk = kernel * kernel;
    const auto s = modulation(style).contiguous();
    const auto w = weight.detach().contiguous();
    const float* sp = s.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float fs = float(scale);
    auto folded = torch::empty({out, kk, in});
    float* fp = folded.data_ptr<float>();
    at::parallel_for(0, out, 1, [&](int64_t begin, int64_t end) {
        for (int64_t o = begin; o < end; ++o) {
            const float* wo = wp + o * in * kk;
            float* dst = fp + o * kk * in;
            for (int64_t t = 0; t < kk; ++t)
                for (int64_t i = 0; i < in; ++i) dst[t * in + i] = wo[i * kk + t] * fs * sp[i];
            if (!demodulate) continue;
            // The squares in kLanes interleaved sums (vectors), not one serial chain of adds:
            // that chain was most of the fold, itself 7% of paper's 256->512 up layer.
            constexpr int64_t kLanes = 16;
            float lanes[kLanes] = {};
            const int64_t n = kk * in;
            int64_t j = 0;
            for (; j + kLanes <= n; j += kLanes)
                for (int64_t l = 0; l < kLanes; ++l) lanes[l] += dst[j + l] * dst[j + l];
            for (; j < n; ++j) lanes[j % kLanes] += dst[j] * dst[j];
            float squares = 0;
            for (float v : lanes) squares += v;
            const float d = 1.0f / std::sqrt(squares + 1e-8f);
            for (j = 0; j < n; ++j) dst[j] *= d;
        }
    });
    return folded.as_strided({out, in, kernel, kernel}, {kk * in, 1, kernel * in, in});
}

namespace {

// F::conv2d(x, w), valid and stride 1, in the form measured fastest at inference on the CPU
// (igan_layer_bench): a 1x1 convolution as one matrix product per image (oneDNN pads ToRGB's 3
// output channels to 16 and ran 4-6x slower), and channels-last where oneDNN's blocked layout
// would pad the input channels by more than a tenth (the structure synthesizer's 35 to 48: a
// quarter faster, conversions included).
torch::Tensor conv2d_inference(const torch::Tensor& x, const torch::Tensor& w) {
    if (!own_cpu_kernels(x) || x.dim() != 4) return plain_conv(x, w);
    const int64_t out = w.size(0), in = w.size(1), area = x.size(2) * x.size(3);
    if (w.size(2) == 1 && w.size(3) == 1) {
        // A channels-last input (the narrow texture layers') is read as it lies, transposed.
        const bool nhwc = only_channels_last(x);
        const auto xc = nhwc ? x : x.contiguous();
        const auto wc = w.reshape({out, in}).contiguous();
        auto y = torch::empty({x.size(0), out, x.size(2), x.size(3)});
        for (int64_t b = 0; b < x.size(0); ++b)
            sgemm(out, area, in, wc.data_ptr<float>(), in, xc[b].data_ptr<float>(),
                  nhwc ? in : area, y[b].data_ptr<float>(), area, nhwc);
        return y;
    }
    // Wide 3x3 layers with 4x fewer multiplications where that was measured faster.
    if (w.size(2) == 3 && w.size(3) == 3 &&
        winograd_conv3x3_suits(in, out, x.size(2), x.size(3)))
        return winograd_conv3x3(x, w);
    // The result stays channels-last: the next structure layer, and the up layer after the last
    // one, read it in that layout.
    if ((in + 15) / 16 * 16 * 10 > in * 11)
        return F::conv2d(x.contiguous(at::MemoryFormat::ChannelsLast), w);
    return F::conv2d(x, w);
}

}  // namespace

torch::Tensor ModulatedConv2dImpl::forward(const torch::Tensor& x, const torch::Tensor& style) {
    if (style.size(0) == 1) {
        // A channels-last input (the narrow texture layers') takes the two-pass fold: its tap
        // order is the channels-last weight LibTorch would otherwise copy folded_weight's into.
        const bool nhwc = !upsample && plain_cpu_float(x) && only_channels_last(x);
        const auto wm = nhwc ? folded_weight_tap_order(style) : folded_weight(style);
        return upsample ? upsample_blur(x, wm, 4.0) : conv2d_inference(x, wm);
    }
    const auto s = modulation(style);           // (Bs, in)
    const auto w = weight[0] * scale;           // (out, in, k, k)
    TORCH_CHECK(s.size(0) == x.size(0), "style batch ", s.size(0), " != input batch ", x.size(0));
    const auto xs = x * s.view({-1, in_channels, 1, 1});
    auto y = upsample ? upsample_conv(xs, w) : plain_conv(xs, w);
    if (demodulate) {
        // d[b, o] = rsqrt(sum_i s[b,i]^2 * sum_kk w[o,i,kk]^2 + eps)
        const auto d = torch::rsqrt(torch::matmul(s.pow(2), w.pow(2).sum({2, 3}).t()) + 1e-8);
        y = y * d.view({-1, out_channels, 1, 1});
    }
    return upsample ? blur3_valid(y, 4.0) : y;
}

torch::Tensor ModulatedConv2dImpl::forward_mixed(const torch::Tensor& x, const StyleMix& style) {
    const auto& mix = style.weights;
    TORCH_CHECK(mix.dim() == 4 && mix.size(0) == x.size(0) && mix.size(1) == style.palette.size(0) &&
                    mix.size(2) == x.size(2) && mix.size(3) == x.size(3),
                "style weights ", mix.sizes(), " do not match input ", x.sizes(), " and palette ",
                style.palette.sizes());
    const auto s = torch::einsum("bnhw,ni->bihw", {mix, modulation(style.palette)});
    const auto w = weight[0] * scale;
    const auto xs = x * s;
    auto y = upsample ? upsample_conv(xs, w) : plain_conv(xs, w);
    if (demodulate) {
        // d[b, o, p] = rsqrt(sum_i s[b,i,p]^2 * sum_kk w[o,i,kk]^2 + eps) at input pixel p.
        auto d = torch::rsqrt(torch::einsum("bihw,oi->bohw", {s.pow(2), w.pow(2).sum({2, 3})}) +
                              1e-8);
        if (upsample) {
            // Input pixel i sits at output 2i: align_corners bilinear is the matching upsampling.
            d = F::interpolate(d, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{y.size(-2), y.size(-1)})
                                      .mode(torch::kBilinear)
                                      .align_corners(true));
        } else {
            d = center_crop(d, y.size(-2), y.size(-1));
        }
        y = y * d;
    }
    return upsample ? blur3_valid(y, 4.0) : y;
}

NoiseInjectionImpl::NoiseInjectionImpl() { weight = register_parameter("weight", torch::zeros({1})); }

torch::Tensor NoiseInjectionImpl::forward(const torch::Tensor& x, const torch::Tensor& noise) {
    return x + weight * noise;
}

StyledConvImpl::StyledConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim,
                               bool upsample, bool use_noise) {
    conv = register_module("conv", ModulatedConv2d(in, out, kernel, style_dim, true, upsample));
    if (use_noise) noise = register_module("noise", NoiseInjection());
    activate = register_module("activate", BiasAct(out));
}

LayerClockScope StyledConvImpl::clock(const torch::Tensor& x) const {
    const auto& c = *conv;
    // An up layer does its MACs at input resolution, a plain one at output resolution.
    const int64_t shrink = c.upsample ? 0 : c.kernel - 1;
    const double macs = double(x.size(0)) * double(x.size(2) - shrink) * double(x.size(3) - shrink) *
                        double(c.in_channels * c.out_channels * c.kernel * c.kernel);
    return {c.upsample ? LayerKind::up : LayerKind::conv3x3, macs, !noise.is_empty()};
}

torch::Tensor StyledConvImpl::forward(const torch::Tensor& x, const torch::Tensor& style,
                                      const torch::Tensor& noise_map) {
    const auto timed = clock(x);
    // An up layer at inference with one style: noise, bias and activation are applied to each
    // output row as the blur makes it, instead of in one more pass over the whole output.
    if (conv->upsample && style.size(0) == 1 && own_cpu_kernels(x) && x.dim() == 4) {
        const int64_t h = 2 * x.size(2) - 3, w = 2 * x.size(3) - 3;
        const bool noise_fits = !noise || (noise_map.defined() && noise_map.dim() == 4 &&
                                           noise_map.is_contiguous() && noise_map.size(0) == x.size(0) &&
                                           noise_map.size(1) == 1 && noise_map.size(2) == h &&
                                           noise_map.size(3) == w && plain_cpu_float(noise_map));
        if (noise_fits) {
            UpsampleEpilogue e;
            e.bias = activate->bias.data_ptr<float>();
            if (noise) {
                e.noise = noise_map.data_ptr<float>();
                e.noise_weight = noise->weight.item<float>();
            }
            const auto folded = conv->folded_weight_tap_order(style);
            if (winograd_up_suits(x.size(1), folded.size(0), x.size(2), x.size(3)))
                return upsample2x_blur_winograd(x, folded, 4.0, 0, &e);
            if (upsample_channels_last_suits(x.size(1), folded.size(0)))
                return upsample2x_blur_channels_last(x, folded, 4.0, 0, &e);
            return upsample2x_blur(x, folded, 4.0, 0, 0, &e);
        }
    }
    return add_noise_and_activate(conv(x, style), noise_map);
}

torch::Tensor StyledConvImpl::forward_mixed(const torch::Tensor& x, const StyleMix& style,
                                      const torch::Tensor& noise_map) {
    const auto timed = clock(x);
    return add_noise_and_activate(conv->forward_mixed(x, style), noise_map);
}

torch::Tensor StyledConvImpl::add_noise_and_activate(torch::Tensor y,
                                                     const torch::Tensor& noise_map) {
    if (noise) {
        TORCH_CHECK(noise_map.defined(), "StyledConv needs a noise map");
        TORCH_CHECK(noise_map.size(-1) == y.size(-1) && noise_map.size(-2) == y.size(-2),
                    "noise map ", noise_map.sizes(), " does not match the conv output ", y.sizes());
    }
    if (torch::GradMode::is_enabled()) return activate(noise ? noise(y, noise_map) : y);
    // Inference: y is this layer's own fresh output, so noise, bias and activation update it in
    // place, in one pass when it is plain CPU memory (the arithmetic of the tensor ops, in order).
    const bool nhwc = only_channels_last(y);
    const bool fused = plain_cpu_float(y) && y.dim() == 4 && (y.is_contiguous() || nhwc) &&
                       (!noise || (noise_map.is_contiguous() && noise_map.size(1) == 1 &&
                                   noise_map.size(0) == y.size(0)));
    if (!fused) {
        if (noise) y.add_(noise_map * noise->weight);
        y.add_(activate->bias.view({1, -1, 1, 1}));
        torch::leaky_relu_(y, 0.2);
        return y.mul_(kSqrt2);
    }
    const int64_t channels = y.size(1), area = y.size(2) * y.size(3);
    float* data = y.data_ptr<float>();
    const float* noise_data = noise ? noise_map.data_ptr<float>() : nullptr;
    const float noise_weight = noise ? noise->weight.item<float>() : 0.0f;
    const float* bias = activate->bias.data_ptr<float>();
    if (nhwc) {  // noise map pixel j is pixel j of the output's (B * H * W) x channels rows
        at::parallel_for(0, y.size(0) * area, 1024, [&](int64_t begin, int64_t end) {
            noise_bias_activate_channels_last(data + begin * channels,
                                              noise_data ? noise_data + begin : nullptr,
                                              noise_weight, bias, end - begin, channels);
        });
        return y;
    }
    at::parallel_for(0, y.size(0) * channels, 1, [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p)
            noise_bias_activate(data + p * area,
                                noise_data ? noise_data + (p / channels) * area : nullptr,
                                noise_weight, bias[p % channels], area);
    });
    return y;
}

ToRGBImpl::ToRGBImpl(int64_t in, int64_t style_dim) {
    conv = register_module("conv", ModulatedConv2d(in, 3, 1, style_dim, false, false));
    bias = register_parameter("bias", torch::zeros({1, 3, 1, 1}));
    upsample = register_module("upsample", KernelBuffer(generator_blur_kernel()));
}

torch::Tensor ToRGBImpl::forward(const torch::Tensor& x, const torch::Tensor& style,
                                 const torch::Tensor& skip) {
    return add_skip(conv(x, style) + bias, skip);
}

torch::Tensor ToRGBImpl::forward_mixed(const torch::Tensor& x, const StyleMix& style,
                                 const torch::Tensor& skip) {
    return add_skip(conv->forward_mixed(x, style) + bias, skip);
}

namespace {

// rgb += the centre crop of skip upsampled to (2h - 1, 2w - 1) by bilinear interpolation with
// aligned corners, in place. That interpolation keeps even pixels and weighs the neighbours of
// odd ones by 1/2: done here as LibTorch's kernel does it (across each row, then across rows),
// to the same bits, in one pass over rgb instead of three full-size tensor passes.
void add_upsampled_skip(torch::Tensor& rgb, const torch::Tensor& skip) {
    const auto s = skip.contiguous();
    const int64_t planes = rgb.size(0) * rgb.size(1), oh = rgb.size(2), ow = rgb.size(3),
                  h = s.size(2), w = s.size(3), uw = 2 * w - 1;
    const int64_t dy = (2 * h - 1 - oh) / 2, dx = (uw - ow) / 2;  // as center_crop's
    const float* sp = s.data_ptr<float>();
    float* o = rgb.data_ptr<float>();
    at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> rows(size_t(h * uw));  // every skip row interpolated along the row
        for (int64_t p = begin; p < end; ++p) {
            for (int64_t r = 0; r < h; ++r) {
                const float* a = sp + (p * h + r) * w;
                float* t = rows.data() + r * uw;
                for (int64_t c = 0; c + 1 < w; ++c) {
                    t[2 * c] = a[c];
                    t[2 * c + 1] = a[c] * 0.5f + a[c + 1] * 0.5f;
                }
                t[uw - 1] = a[w - 1];
            }
            for (int64_t y = 0; y < oh; ++y) {
                const int64_t r = y + dy;
                const float* t0 = rows.data() + (r >> 1) * uw + dx;
                float* out = o + (p * oh + y) * ow;
                if (r & 1) {
                    const float* t1 = t0 + uw;
                    for (int64_t x = 0; x < ow; ++x) out[x] += t0[x] * 0.5f + t1[x] * 0.5f;
                } else {
                    for (int64_t x = 0; x < ow; ++x) out[x] += t0[x];
                }
            }
        }
    });
}

}  // namespace

torch::Tensor ToRGBImpl::add_skip(torch::Tensor rgb, const torch::Tensor& skip) {
    if (!skip.defined()) return rgb;
    // Per-channel transposed conv by the [1,2,1]x[1,2,1]/4 kernel, stride 2: H -> 2H+1, crop to
    // 2H-1, then centre-crop. That kernel makes it exactly bilinear interpolation with aligned
    // corners (even pixels copy, odd ones average their neighbours), which is far faster than a
    // grouped transposed convolution.
    const int64_t h = skip.size(-2), w = skip.size(-1);
    // At inference on the CPU, rgb (this layer's fresh output) takes it in place.
    if (plain_cpu_float(rgb) && plain_cpu_float(skip) && rgb.dim() == 4 && skip.dim() == 4 &&
        rgb.is_contiguous() && skip.size(0) == rgb.size(0) && skip.size(1) == rgb.size(1) &&
        2 * h - 1 >= rgb.size(2) && 2 * w - 1 >= rgb.size(3)) {
        add_upsampled_skip(rgb, skip);
        return rgb;
    }
    auto up = F::interpolate(skip, F::InterpolateFuncOptions()
                                       .size(std::vector<int64_t>{2 * h - 1, 2 * w - 1})
                                       .mode(torch::kBilinear)
                                       .align_corners(true));
    return rgb + center_crop(up, rgb.size(-2), rgb.size(-1));
}

}  // namespace igan
