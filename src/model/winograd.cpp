#include "model/winograd.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "core/env_choice.h"
#include "core/error.h"

#ifdef IGAN_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace igan {

namespace {

std::atomic<Conv3x3Form>& form_in_use() {
    static std::atomic<Conv3x3Form> form = env_choice(
        "IGAN_CPU_CONV3X3", Conv3x3Form::automatic,
        {Conv3x3Form::automatic, Conv3x3Form::direct, Conv3x3Form::winograd}, conv3x3_form_name);
    return form;
}

}  // namespace

Conv3x3Form cpu_conv3x3_form() { return form_in_use().load(); }

void set_cpu_conv3x3_form(Conv3x3Form form) { form_in_use().store(form); }

const char* conv3x3_form_name(Conv3x3Form form) {
    switch (form) {
        case Conv3x3Form::direct:
            return "direct";
        case Conv3x3Form::winograd:
            return "winograd";
        default:
            return "auto";
    }
}

bool winograd_conv3x3_suits(int64_t in, int64_t out, int64_t h, int64_t w) {
    const Conv3x3Form form = cpu_conv3x3_form();
    if (form == Conv3x3Form::direct || h < 3 || w < 3 || !winograd_conv3x3_available())
        return false;
    if (form == Conv3x3Form::winograd) return true;
    return in % 16 == 0 && out % 16 == 0 && std::min(in, out) >= 128 && h - 2 >= 8 && w - 2 >= 8;
}

#ifdef IGAN_HAVE_DNNL

namespace {

using dnnl::memory;
constexpr auto kF32 = memory::data_type::f32;

const dnnl::engine& cpu_engine() {
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// Tiles per row: the smallest even count >= t with no prime factor above 7; band heights in
// tiles: multiples of 4. oneDNN blocks a convolution's tile count by its divisors, and counts
// such as 17 x 17, 19 x 19 or 6 x 70 ran 3-4x slower than their neighbours; with these, every
// shape measured (4, 8 or 12 by 10 to 72) ran at 0.8-1.0 of the best rate, bar the smallest.
int64_t smooth_tiles(int64_t t) {
    for (int64_t n = t + (t & 1);; n += 2) {
        int64_t rest = n;
        for (int64_t p : {2, 3, 5, 7})
            while (rest % p == 0) rest /= p;
        if (rest == 1) return n;
    }
}

int64_t round_up4(int64_t t) { return (t + 3) / 4 * 4; }

// A (batch, in, 4 th + 2, 4 tw + 2) -> (batch, out, 4 th, 4 tw) convolution. Training's
// propagation kind because then the primitive transforms plain blocked weights itself, in
// parallel JIT code; for inference it wants them transformed by a reorder, which took 75 ms per
// 512 x 512 layer, more than the product at tile 256's smaller layers.
dnnl::convolution_forward::primitive_desc winograd_pd(int64_t batch, int64_t in, int64_t out,
                                                      int64_t th, int64_t tw) {
    using tag = memory::format_tag;
    const memory::desc src({batch, in, 4 * th + 2, 4 * tw + 2}, kF32, tag::nChw16c);
    const memory::desc wei({out, in, 3, 3}, kF32, tag::OIhw16i16o);
    const memory::desc dst({batch, out, 4 * th, 4 * tw}, kF32, tag::nChw16c);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // from LibTorch's allocator
    return {dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training,
                                            dnnl::algorithm::convolution_winograd, src, wei, dst,
                                            {1, 1}, {0, 0}, {0, 0}),
            attr, cpu_engine()};
}

// A region of `dims` laid out as t is (its strides), starting at `data`.
memory plain_memory(const torch::Tensor& t, memory::dims dims, float* data) {
    const auto s = t.strides();
    return memory({dims, kF32, memory::dims(s.begin(), s.end())}, cpu_engine(), data);
}

float* buffer(torch::Tensor& holder, size_t bytes) {
    if (holder.numel() * 4 < int64_t(bytes)) holder = torch::empty({int64_t(bytes + 3) / 4});
    return holder.data_ptr<float>();
}

// Zeroes what a band's blocked input (nChw16c, `blocks` channel blocks of h x w) holds beyond
// its first `rows` rows and `cols` columns: Winograd's tiles there mix these values into
// neighbouring outputs, which are exact for any finite values but stay finite only if these are.
void zero_margin(float* data, int64_t blocks, int64_t h, int64_t w, int64_t rows, int64_t cols) {
    for (int64_t b = 0; b < blocks; ++b) {
        float* block = data + b * h * w * 16;
        if (cols < w)
            for (int64_t y = 0; y < rows; ++y)
                std::memset(block + (y * w + cols) * 16, 0, size_t(w - cols) * 16 * sizeof(float));
        std::memset(block + rows * w * 16, 0, size_t(h - rows) * w * 16 * sizeof(float));
    }
}

}  // namespace

bool winograd_conv3x3_available() {
    static const bool available = [] {
        try {
            winograd_pd(1, 16, 16, 2, 2);
            return true;
        } catch (const dnnl::error&) {
            return false;
        }
    }();
    return available;
}

torch::Tensor winograd_conv3x3(const torch::Tensor& x, const torch::Tensor& w, int64_t band_tiles) {
    TORCH_CHECK(x.dim() == 4 && w.dim() == 4 && w.size(2) == 3 && w.size(3) == 3 &&
                    w.size(1) == x.size(1) && x.size(2) >= 3 && x.size(3) >= 3 && x.is_cpu() &&
                    w.is_cpu() && x.scalar_type() == torch::kFloat &&
                    w.scalar_type() == torch::kFloat,
                "winograd_conv3x3 needs a float CPU input (B, C, H >= 3, W >= 3) and weights "
                "(out, C, 3, 3), got ",
                x.sizes(), " and ", w.sizes());
    const int64_t batch = x.size(0), in = x.size(1), h = x.size(2), wd = x.size(3);
    const int64_t out = w.size(0), oh = h - 2, ow = wd - 2;
    const int64_t tw = smooth_tiles((ow + 3) / 4), tile_rows = (oh + 3) / 4;
    // About 1000 tiles a band: 12 x 72 ran as fast as the whole 72 x 72, in a fifth of the memory.
    const int64_t band =
        band_tiles > 0 ? round_up4(band_tiles) : std::max<int64_t>(1000 / tw / 4 * 4, 4);
    auto y = torch::empty({batch, out, oh, ow});
    if (batch == 0 || out == 0) return y;

    dnnl::stream stream(cpu_engine());
    torch::Tensor src_holder, wei_holder, dst_holder, scratch_holder;
    memory weights;
    for (int64_t t0 = 0; t0 < tile_rows; t0 += band) {
        const int64_t th = std::min(band, round_up4(tile_rows - t0));
        const auto pd = winograd_pd(batch, in, out, th, tw);
        memory src(pd.src_desc(), cpu_engine(), buffer(src_holder, pd.src_desc().get_size()));
        memory dst(pd.dst_desc(), cpu_engine(), buffer(dst_holder, pd.dst_desc().get_size()));
        memory scratch(pd.scratchpad_desc(), cpu_engine(),
                       buffer(scratch_holder, pd.scratchpad_desc().get_size()));
        if (!weights) {
            weights = memory(pd.weights_desc(), cpu_engine(),
                             buffer(wei_holder, pd.weights_desc().get_size()));
            auto plain = plain_memory(w, {out, in, 3, 3}, w.data_ptr<float>());
            dnnl::reorder(plain, weights).execute(stream, plain, weights);
        }
        const int64_t rows = std::min(h - 4 * t0, 4 * th + 2), hp = 4 * th + 2, wp = 4 * tw + 2;
        const int64_t blocks = batch * ((in + 15) / 16);
        float* src_data = static_cast<float*>(src.get_data_handle());
        if (in % 16 == 0)
            zero_margin(src_data, blocks, hp, wp, rows, wd);
        else
            std::memset(src_data, 0, pd.src_desc().get_size());  // channel padding too
        auto band_in =
            plain_memory(x, {batch, in, rows, wd}, x.data_ptr<float>() + 4 * t0 * x.stride(2));
        memory band_src(pd.src_desc().submemory_desc({batch, in, rows, wd}, {0, 0, 0, 0}),
                        cpu_engine(), src_data);
        dnnl::reorder(band_in, band_src).execute(stream, band_in, band_src);
        dnnl::convolution_forward(pd).execute(stream, {{DNNL_ARG_SRC, src},
                                                       {DNNL_ARG_WEIGHTS, weights},
                                                       {DNNL_ARG_DST, dst},
                                                       {DNNL_ARG_SCRATCHPAD, scratch}});
        const int64_t out_rows = std::min(oh - 4 * t0, 4 * th);
        memory band_dst(pd.dst_desc().submemory_desc({batch, out, out_rows, ow}, {0, 0, 0, 0}),
                        cpu_engine(), dst.get_data_handle());
        auto band_out =
            plain_memory(y, {batch, out, out_rows, ow}, y.data_ptr<float>() + 4 * t0 * ow);
        dnnl::reorder(band_dst, band_out).execute(stream, band_dst, band_out);
        stream.wait();
    }
    return y;
}

#else

bool winograd_conv3x3_available() { return false; }

torch::Tensor winograd_conv3x3(const torch::Tensor&, const torch::Tensor&, int64_t) {
    throw Error("winograd_conv3x3: this build has no oneDNN (apt install libdnnl-dev)");
}

#endif

}  // namespace igan
