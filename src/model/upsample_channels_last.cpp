#include "model/upsample_channels_last.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "model/gemm.h"
#include "model/row_kernels.h"

namespace igan {

namespace {

// The widest layer that runs channels-last: tiny's layers are 32-64 channels wide.
constexpr int64_t kChannelsLastMaxChannels = 64;
// A band's tap planes (nine floats per input pixel and output channel) within this many floats
// stay in cache from the product to the sums, as in the NCHW form.
constexpr int64_t kBandTapFloats = int64_t(1) << 17;
// Channels per thread when the sums run on several: whole vectors.
constexpr int64_t kChannelGrain = 16;

}  // namespace

bool upsample_channels_last_suits(int64_t in, int64_t out) {
    return in <= kChannelsLastMaxChannels && out <= kChannelsLastMaxChannels;
}

torch::Tensor upsample2x_blur_channels_last(const torch::Tensor& x, const torch::Tensor& w,
                                            double gain, int64_t band_rows,
                                            const UpsampleEpilogue* epilogue) {
    TORCH_CHECK(x.is_cpu() && x.scalar_type() == torch::kFloat && !torch::GradMode::is_enabled() &&
                    x.dim() == 4 && x.size(2) >= 2 && x.size(3) >= 2 && w.dim() == 4 &&
                    w.size(1) == x.size(1) && w.size(2) == 3 && w.size(3) == 3,
                "upsample2x_blur_channels_last needs float CPU (B, in, H >= 2, W >= 2) and (out, "
                "in, 3, 3) without gradients, got ", x.sizes(), " and ", w.sizes());
    const int64_t batch = x.size(0), in = x.size(1), channels = w.size(0), h = x.size(2),
                  wd = x.size(3), oh = 2 * h - 3, ow = 2 * wd - 3;
    // Floats per input pixel in the tap planes: tap t (= 3 ky + kx) of channel c at t * channels + c.
    const int64_t pixel = 9 * channels;
    const int64_t rows_per_band =
        std::clamp<int64_t>(band_rows > 0 ? band_rows : kBandTapFloats / (pixel * wd), 1, h);
    // (in, 9 * out), column t * out + o holding w[o][i][t]: one product of a band's pixels
    // (rows of in channels) gives every tap plane, channels innermost.
    const auto wt = w.permute({1, 2, 3, 0}).reshape({in, pixel}).contiguous();
    GemmRhs weights(wt.data_ptr<float>(), in, pixel, pixel);
    const auto xc = x.contiguous(at::MemoryFormat::ChannelsLast);
    auto out = torch::empty({batch, channels, oh, ow},
                            x.options().memory_format(at::MemoryFormat::ChannelsLast));
    const float scale = float(gain / 16.0);
    const float* bias = epilogue ? epilogue->bias : nullptr;
    std::vector<float> taps(size_t(rows_per_band * wd * pixel));
    // Tap row 2 of the previous band's last input row (the odd upsampled row between two bands
    // needs it), at the same offsets as in `taps`; and the last three upsampled rows blurred
    // along the row, the window of the blur across rows.
    std::vector<float> carry(size_t(wd * pixel)), window(size_t(3 * ow * channels));
    for (int64_t b = 0; b < batch; ++b) {
        const float* xb = xc.data_ptr<float>() + b * h * wd * in;
        float* ob = out.data_ptr<float>() + b * oh * ow * channels;
        const float* noise = epilogue && epilogue->noise ? epilogue->noise + b * oh * ow : nullptr;
        int64_t first_row = 0;  // the next upsampled row to make
        for (int64_t a = 0; a < h; a += rows_per_band) {
            const int64_t rows = std::min(rows_per_band, h - a);
            weights.multiply(xb + a * wd * in, rows * wd, in, taps.data(), pixel);
            // Input row r's tap planes: this band's, or the carried row a - 1.
            auto row_taps = [&](int64_t r) {
                return r < a ? carry.data() : taps.data() + (r - a) * wd * pixel;
            };
            const int64_t end_row = 2 * (a + rows) - 1;  // rows up to 2 * (last input row)
            at::parallel_for(0, channels, kChannelGrain, [&](int64_t c0, int64_t c1) {
                for (int64_t m = first_row; m < end_row; ++m) {
                    // Along a column, even rows 2p take tap row 1 of input row p, odd rows 2p+1
                    // tap row 0 of p+1 plus tap row 2 of p (likewise along a row).
                    const int64_t p = m >> 1;
                    float* slot = window.data() + (m % 3) * ow * channels;
                    if (m & 1)
                        upsampled_row_blur_channels_last(row_taps(p + 1) + c0,
                                                         row_taps(p) + 6 * channels + c0, channels,
                                                         pixel, wd, c1 - c0, slot + c0, channels);
                    else
                        upsampled_row_blur_channels_last(row_taps(p) + 3 * channels + c0, nullptr,
                                                         channels, pixel, wd, c1 - c0, slot + c0,
                                                         channels);
                    if (m < 2) continue;
                    const auto row = [&](int64_t r) { return window.data() + (r % 3) * ow * channels + c0; };
                    blur_rows_channels_last(row(m - 2), row(m - 1), row(m), ow, c1 - c0, channels,
                                            scale, noise ? noise + (m - 2) * ow : nullptr,
                                            epilogue ? epilogue->noise_weight : 0.0f,
                                            bias ? bias + c0 : nullptr,
                                            ob + (m - 2) * ow * channels + c0, channels);
                }
            });
            const float* last = taps.data() + (rows - 1) * wd * pixel + 6 * channels;
            for (int64_t s = 0; s < wd; ++s)
                std::copy_n(last + s * pixel, 3 * channels, carry.data() + s * pixel + 6 * channels);
            first_row = end_row;
        }
    }
    return out;
}

}  // namespace igan
