// The 3x3 layers' Winograd convolution (model/winograd.h) against LibTorch's direct one, and the
// render contract (docs/contract.md) with every plain 3x3 layer run by it.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "common/test_util.h"
#include "core/threads.h"
#include "model/winograd.h"
#include "render/renderer.h"

namespace igan {
namespace {

namespace F = torch::nn::functional;

// The form for one test, then back to the process's own.
class FormScope {
public:
    explicit FormScope(Conv3x3Form form) : previous_(cpu_conv3x3_form()) {
        set_cpu_conv3x3_form(form);
    }
    ~FormScope() { set_cpu_conv3x3_form(previous_); }

private:
    Conv3x3Form previous_;
};

// Odd sizes leave partial 4 x 4 tiles at the right and bottom edges; tall inputs take several
// bands (4 tile rows each with band_tiles 1); channel counts off 16 are padded by oneDNN. The
// bound, 1e-5 of the output's largest magnitude: Winograd and the direct convolution differ by
// 1.3-2e-6 of it here and at 512 channels (igan_layer_bench), a misplaced tile by far more.
TEST(Winograd, MatchesDirectConvolutionOnOddSizes) {
    if (!winograd_conv3x3_available()) GTEST_SKIP() << "no oneDNN Winograd on this build or CPU";
    torch::NoGradGuard no_grad;
    torch::manual_seed(7);
    struct Case {
        int64_t batch, in, out, h, w, band_tiles;
    };
    for (const Case c :
         {Case{1, 32, 48, 3, 3, 0}, Case{1, 32, 32, 5, 9, 0}, Case{2, 16, 32, 37, 23, 0},
          Case{1, 48, 16, 61, 18, 1}, Case{1, 24, 8, 19, 41, 2}, Case{3, 32, 32, 50, 7, 1}}) {
        const auto x = torch::randn({c.batch, c.in, c.h, c.w});
        const auto w = torch::randn({c.out, c.in, 3, 3}) / std::sqrt(9.0 * double(c.in));
        const auto direct = F::conv2d(x, w);
        const double tol = 1e-5 * direct.abs().max().item<double>();
        const auto got = winograd_conv3x3(x, w, c.band_tiles);
        if (c.batch == 2) {  // a render's pixels must not depend on --threads or --workers
            IntraOpThreadsScope two(2);
            EXPECT_TRUE(torch::equal(winograd_conv3x3(x, w, c.band_tiles), got));
        }
        EXPECT_TRUE(got.is_contiguous());
        EXPECT_TRUE(test::all_close(got, direct, tol))
            << c.batch << "x" << c.in << "->" << c.out << " @" << c.h << "x" << c.w << " band "
            << c.band_tiles;
        // Channels-last inputs and strided weights (as the folded tap-order weights are).
        const auto wt = w.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
        EXPECT_TRUE(test::all_close(
            winograd_conv3x3(x.contiguous(at::MemoryFormat::ChannelsLast), wt, c.band_tiles), got,
            0.0));
    }
}

// A crop of the input gives the same crop of the output, to rounding only: the tile grid moves
// with the input's corner, as a canvas tile's start moves it.
TEST(Winograd, CroppedInputGivesTheCropOfTheOutput) {
    if (!winograd_conv3x3_available()) GTEST_SKIP() << "no oneDNN Winograd on this build or CPU";
    torch::NoGradGuard no_grad;
    torch::manual_seed(8);
    const auto x = torch::randn({1, 32, 45, 52});
    const auto w = torch::randn({32, 32, 3, 3}) / std::sqrt(9.0 * 32);
    const auto full = winograd_conv3x3(x, w);
    const double tol = 1e-5 * full.abs().max().item<double>();
    for (int64_t dy : {1, 2, 3, 5})
        for (int64_t dx : {0, 1, 2, 7}) {
            const auto part = winograd_conv3x3(x.narrow(2, dy, 30).narrow(3, dx, 33), w);
            EXPECT_TRUE(test::all_close(part, full.narrow(2, dy, 28).narrow(3, dx, 31), tol))
                << dy << "," << dx;
        }
}

TEST(Winograd, FormsChooseTheConvolution) {
    {
        FormScope direct(Conv3x3Form::direct);
        EXPECT_FALSE(winograd_conv3x3_suits(512, 512, 279, 279));
    }
    FormScope automatic(Conv3x3Form::automatic);
    EXPECT_EQ(winograd_conv3x3_suits(512, 512, 279, 279), winograd_conv3x3_available());
    EXPECT_EQ(winograd_conv3x3_suits(512, 256, 41, 12), winograd_conv3x3_available());
    EXPECT_FALSE(winograd_conv3x3_suits(64, 64, 137, 137));    // narrow: not measured faster
    EXPECT_FALSE(winograd_conv3x3_suits(512, 520, 137, 137));  // channels off 16
    EXPECT_FALSE(winograd_conv3x3_suits(512, 512, 9, 137));    // output under 8 rows
    FormScope winograd(Conv3x3Form::winograd);
    EXPECT_EQ(winograd_conv3x3_suits(8, 3, 3, 3), winograd_conv3x3_available());
    for (auto f : {Conv3x3Form::automatic, Conv3x3Form::direct, Conv3x3Form::winograd})
        EXPECT_STRNE(conv3x3_form_name(f), "");
}

// The render contract with the plain 3x3 layers by Winograd: the micro model forced to it, and
// a 128-channel one in the automatic form (the paper's case, cheaply), against the direct
// convolutions (these random models' outputs reach about 11).
TEST(Winograd, TiledRenderEqualsDirect) {
    if (!winograd_conv3x3_available()) GTEST_SKIP() << "no oneDNN Winograd on this build or CPU";
    auto wide = test::micro_generator_config();
    wide.ts_conv_out_channels = {128, 128, 128, 128};
    for (const auto& [config, form] :
         {std::pair{test::micro_generator_config(), Conv3x3Form::winograd},
          std::pair{wide, Conv3x3Form::automatic}}) {
        FormScope restore(cpu_conv3x3_form());
        test::expect_form_keeps_render_contract(
            config,
            [form = form](bool chosen) {
                set_cpu_conv3x3_form(chosen ? form : Conv3x3Form::direct);
            },
            conv3x3_form_name(form));
    }
}

}  // namespace
}  // namespace igan
