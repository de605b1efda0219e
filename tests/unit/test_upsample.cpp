// The generator's inference kernels (the up layers' GEMM, tap-row sums, blur and activation;
// the plain convolutions' faster forms) against LibTorch's operators, and the layer clock
// behind igan bench's per-kind fractions.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/threads.h"
#include "model/gemm.h"
#include "model/layer_clock.h"
#include "model/layers.h"
#include "model/upsample_channels_last.h"

namespace igan {
namespace {

namespace F = torch::nn::functional;

// igan's GEMM equals torch::mm on operands whose rows are longer than the matrices (leading
// dimensions, as the up layer's bands of input rows are), on one thread and on two; the two
// thread counts agree bit for bit (a render's pixels must not depend on --workers).
TEST(Gemm, MatchesTorchMmWithLeadingDimensions) {
    torch::manual_seed(5);
    const int64_t m = 45, n = 70, k = 33;
    const auto a = torch::randn({m, k + 3}), b = torch::randn({k, n + 11});
    const auto av = a.narrow(1, 2, k), bv = b.narrow(1, 5, n);
    const auto ref = torch::mm(av, bv);
    torch::Tensor got[2];
    for (int threads : {1, 2}) {
        IntraOpThreadsScope scope(threads);
        auto c = torch::full({m, n + 4}, std::nanf(""));
        sgemm(m, n, k, av.data_ptr<float>(), av.stride(0), bv.data_ptr<float>(), bv.stride(0),
              c.data_ptr<float>(), c.stride(0));
        EXPECT_TRUE(test::all_close(c.narrow(1, 0, n), ref, 1e-4, 1e-5)) << threads;
        EXPECT_TRUE(c.narrow(1, n, 4).isnan().all().item<bool>()) << "wrote past the rows";
        got[threads - 1] = c.narrow(1, 0, n);
    }
    EXPECT_TRUE(torch::equal(got[0], got[1]));
    EXPECT_FALSE(sgemm_backend().empty());
    // b stored transposed (n x k), as a channels-last image's pixels by channels.
    const auto bt = torch::randn({n, k + 6}).narrow(1, 1, k);
    auto c = torch::empty({m, n});
    sgemm(m, n, k, av.data_ptr<float>(), av.stride(0), bt.data_ptr<float>(), bt.stride(0),
          c.data_ptr<float>(), n, true);
    EXPECT_TRUE(test::all_close(c, torch::mm(av, bt.t()), 1e-4, 1e-5));
}

// Bands of input rows and blocks of output channels change neither the tap planes' sums nor
// the blur: against the whole layer's tap planes, interleaved and blurred, for one to all rows
// per band and one to all channels per block; one thread or two (each taking its share of the
// channels) bit for bit the same.
TEST(Layers, BandsAndChannelBlocksEqualTheWholeLayer) {
    torch::manual_seed(7);
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({2, 4, 7, 19});
    const auto k = torch::randn({5, 4, 3, 3});
    const auto whole = blur3_valid(interleave_taps(upsample_taps(x, k)), 4.0);
    for (int64_t band_columns : {1, 40, 0})
        for (int64_t block : {1, 2, 0}) {
            torch::Tensor got[2];
            for (int threads : {1, 2}) {
                IntraOpThreadsScope scope(threads);
                got[threads - 1] = upsample2x_blur(x, k, 4.0, band_columns, block);
            }
            ASSERT_EQ(got[0].sizes(), whole.sizes());
            EXPECT_TRUE(test::all_close(got[0], whole, 1e-5)) << band_columns << " " << block;
            EXPECT_TRUE(torch::equal(got[0], got[1])) << band_columns << " " << block;
        }
    EXPECT_EQ(upsample_channel_block(5, 40, 2), 2);
    EXPECT_EQ(upsample_channel_block(5, 40, 9), 5);
}

// An up layer at inference (product through igan's GEMM, tap-row sums, blur, noise, bias and
// activation applied row by row by the vector kernels) against the same layer on LibTorch's
// operators with gradients on (transposed convolution, tensor blur, tensor noise and
// activation): sizes whose rows leave vector tails, with and without noise.
TEST(Layers, FusedUpLayerEqualsTensorOps) {
    torch::manual_seed(6);
    for (bool with_noise : {true, false}) {
        StyledConv up(6, 5, 3, 8, true, with_noise);
        {
            torch::NoGradGuard no_grad;
            if (with_noise) up->noise->weight.fill_(0.7);
            up->activate->bias.normal_();
        }
        const auto style = torch::randn({1, 8});
        for (auto [h, w] : {std::pair<int64_t, int64_t>{9, 21}, {2, 2}, {12, 40}}) {
            const auto x = torch::randn({2, 6, h, w});
            const auto noise = with_noise ? torch::randn({2, 1, 2 * h - 3, 2 * w - 3}) : torch::Tensor();
            const auto ref = up(x, style, noise).detach();
            torch::NoGradGuard no_grad;
            const auto got = up(x, style, noise);
            ASSERT_EQ(got.sizes(), ref.sizes());
            EXPECT_TRUE(test::all_close(got, ref, 1e-5, 1e-5)) << h << "x" << w << " noise " << with_noise;
        }
    }
}

// The channels-last up layer against LibTorch's transposed convolution, tensor blur, noise and
// activation: channel counts that leave vector tails, rows whose input is narrower than a
// vector, one input row per band to all of them, NCHW or channels-last input, one thread or two
// (bit for bit the same).
TEST(Layers, ChannelsLastUpLayerEqualsTensorOps) {
    torch::manual_seed(9);
    torch::NoGradGuard no_grad;
    for (auto [in, out, h, w] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{6, 20, 9, 21},
                                 {17, 33, 2, 2}, {32, 16, 12, 5}}) {
        const auto x = torch::randn({2, in, h, w}), k = torch::randn({out, in, 3, 3}) / 6;
        const auto noise = torch::randn({2, 1, 2 * h - 3, 2 * w - 3}), bias = torch::randn({out});
        const auto blurred = blur3_valid(conv_transpose2x_cropped(x, k), 4.0);
        const auto activated = fused_leaky_relu(blurred + noise * 0.7f, bias);
        UpsampleEpilogue e;
        e.noise = noise.data_ptr<float>();
        e.noise_weight = 0.7f;
        e.bias = bias.data_ptr<float>();
        for (int64_t rows : {int64_t(1), int64_t(2), int64_t(0), h})
            for (bool nhwc : {false, true}) {
                const auto xi = nhwc ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
                const auto plain = upsample2x_blur_channels_last(xi, k, 4.0, rows);
                EXPECT_TRUE(plain.is_contiguous(at::MemoryFormat::ChannelsLast));
                EXPECT_TRUE(test::all_close(plain, blurred, 1e-5, 1e-5)) << in << "->" << out
                                                                         << " rows " << rows;
                const auto got = upsample2x_blur_channels_last(xi, k, 4.0, rows, &e);
                EXPECT_TRUE(test::all_close(got, activated, 1e-5, 1e-5)) << in << "->" << out
                                                                        << " rows " << rows;
                // Two threads (once per shape: on a loaded machine their barriers are slow).
                if (rows != 2 || !nhwc) continue;
                IntraOpThreadsScope scope(2);
                EXPECT_TRUE(torch::equal(upsample2x_blur_channels_last(xi, k, 4.0, rows, &e), got));
            }
    }
    EXPECT_TRUE(upsample_channels_last_suits(32, 64));
    EXPECT_FALSE(upsample_channels_last_suits(512, 512));
}

// A narrow texture synthesizer's layers at inference, channels-last from the up layer on (its
// 3x3 convolution's noise, bias and activation, a ToRGB reading the map transposed), against
// the same layers on LibTorch's NCHW operators with gradients on.
TEST(Layers, ChannelsLastTextureLayersEqualTensorOps) {
    torch::manual_seed(10);
    StyledConv up(8, 16, 3, 8, true, true), plain(16, 16, 3, 8, false, true);
    ToRGB rgb(16, 8);
    {
        torch::NoGradGuard no_grad;
        for (auto* layer : {&up, &plain}) {
            (*layer)->noise->weight.fill_(0.3);
            (*layer)->activate->bias.normal_();
        }
    }
    const auto style = torch::randn({1, 8}), x = torch::randn({2, 8, 7, 10});
    const auto noise_up = torch::randn({2, 1, 11, 17}), noise_plain = torch::randn({2, 1, 9, 15});
    auto run = [&] {
        const auto u = up(x, style, noise_up);
        const auto p = plain(u, style, noise_plain);
        return std::make_tuple(u, p, rgb(p, style));
    };
    const auto [ref_u, ref_p, ref_rgb] = run();
    torch::NoGradGuard no_grad;
    const auto [u, p, out] = run();
    EXPECT_TRUE(u.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(p.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_TRUE(test::all_close(u, ref_u.detach(), 1e-5, 1e-5));
    EXPECT_TRUE(test::all_close(p, ref_p.detach(), 1e-4, 1e-5));
    EXPECT_TRUE(test::all_close(out, ref_rgb.detach(), 1e-4, 1e-5));
}

// ToRGB's skip at inference (its rgb takes the upsampled skip in place, in one pass) against
// LibTorch's bilinear interpolation with aligned corners, centre-cropped and added: bit for bit,
// for margins of zero, one and an odd number of pixels.
TEST(Layers, ToRgbSkipEqualsBilinearInterpolation) {
    torch::manual_seed(11);
    torch::NoGradGuard no_grad;
    ToRGB rgb(6, 8);
    const auto style = torch::randn({1, 8}), skip = torch::randn({2, 3, 7, 9});
    for (auto [h, w] : {std::pair<int64_t, int64_t>{13, 17}, {11, 15}, {10, 12}}) {
        const auto x = torch::randn({2, 6, h, w});
        const auto up = F::interpolate(skip, F::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{13, 17})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(true));
        const auto ref = rgb(x, style) + center_crop(up, h, w);
        EXPECT_TRUE(torch::equal(rgb(x, style, skip), ref)) << h << "x" << w;
    }
}

// The plain modulated convolutions at inference (a 1x1 one as a matrix product per image, one
// with 35 input channels channels-last, its result left so, on an NCHW input or a channels-last
// one as the next structure layer gets) against LibTorch's NCHW convolution with gradients on.
TEST(Layers, InferenceConvolutionsEqualTensorOps) {
    torch::manual_seed(8);
    for (auto [in, out, kernel] : {std::tuple<int64_t, int64_t, int64_t>{35, 8, 7}, {12, 3, 1}}) {
        ModulatedConv2d conv(in, out, kernel, 8, kernel > 1, false);
        const auto style = torch::randn({1, 8});
        const auto x = torch::randn({2, in, 13, 17});
        const auto ref = conv(x, style).detach();
        torch::NoGradGuard no_grad;
        for (bool nhwc : {false, true}) {
            const auto got = conv(nhwc ? x.contiguous(at::MemoryFormat::ChannelsLast) : x, style);
            ASSERT_EQ(got.sizes(), ref.sizes());
            EXPECT_TRUE(got.is_contiguous(kernel > 1 ? at::MemoryFormat::ChannelsLast
                                                     : at::MemoryFormat::Contiguous));
            EXPECT_TRUE(test::all_close(got, ref, 1e-5, 1e-5)) << in << "->" << out << " " << nhwc;
        }
    }
}

// The clock counts the texture synthesizer's convolutions (with noise) by kind, an up layer's
// MACs at input resolution and a 3x3 one's at output resolution, the structure synthesizer's
// (no noise) not at all, and nothing while it is off.
TEST(LayerClock, CountsTextureLayersByKind) {
    torch::NoGradGuard no_grad;
    StyledConv up(4, 6, 3, 8, true, true), plain(6, 5, 3, 8, false, true), gs(6, 5, 3, 8, false, false);
    const auto style = torch::randn({1, 8});
    const auto x = torch::randn({2, 4, 5, 7});
    auto run = [&] {
        const auto y = up(x, style, torch::randn({2, 1, 7, 11}));
        plain(y, style, torch::randn({2, 1, 5, 9}));
        gs(y, style);
    };
    run();
    EXPECT_EQ(layer_clock_totals().macs[0] + layer_clock_totals().macs[1], 0.0);
    layer_clock_enable(true);
    run();
    run();
    layer_clock_enable(false);
    run();
    const auto t = layer_clock_totals();
    EXPECT_EQ(t.macs[int(LayerKind::up)], 2.0 * 2 * 5 * 7 * 4 * 6 * 9);
    EXPECT_EQ(t.macs[int(LayerKind::conv3x3)], 2.0 * 2 * 5 * 9 * 6 * 5 * 9);
    EXPECT_GT(t.thread_seconds[int(LayerKind::up)], 0.0);
    EXPECT_GT(t.thread_seconds[int(LayerKind::conv3x3)], 0.0);
}

}  // namespace
}  // namespace igan
