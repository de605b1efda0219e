// The wide up layers by Winograd (model/winograd_up.h) against the transposed convolution in
// float64, the tap-plane form with its epilogue, and the render contract with every up layer
// run by it.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/threads.h"
#include "model/layers.h"
#include "model/winograd_up.h"
#include "render/renderer.h"

namespace igan {
namespace {

// The form for one test, then back to the process's own.
class UpFormScope {
public:
    explicit UpFormScope(UpForm form) : previous_(cpu_up_form()) { set_cpu_up_form(form); }
    ~UpFormScope() { set_cpu_up_form(previous_); }

private:
    UpForm previous_;
};

// The exact layer: transposed convolution and blur in float64.
torch::Tensor reference_up(const torch::Tensor& x, const torch::Tensor& w) {
    return blur3_valid(conv_transpose2x_cropped(x.to(torch::kDouble), w.to(torch::kDouble)), 4.0);
}

// Odd sizes leave partial tiles at the right and bottom edges and 2-pixel inputs a single one;
// band 1 makes every tile row a band. The bound, 1e-5 of the output's largest magnitude: the
// tap-plane form's float error is about 1e-7 of it here, Winograd's a few times that, and a
// misplaced tile or wrong transform point far more.
TEST(WinogradUp, MatchesTheExactLayerOnOddSizes) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(11);
    struct Case {
        int64_t batch, in, out, h, w, band;
    };
    for (const Case c : {Case{1, 16, 24, 2, 2, 0}, Case{1, 8, 8, 5, 9, 0}, Case{2, 32, 16, 13, 11, 1},
                         Case{1, 20, 70, 17, 23, 2}, Case{1, 64, 8, 9, 38, 0}}) {
        const auto x = torch::randn({c.batch, c.in, c.h, c.w});
        const auto w = torch::randn({c.out, c.in, 3, 3}) / std::sqrt(9.0 * double(c.in));
        const auto exact = reference_up(x, w);
        const double scale = exact.abs().max().item<double>();
        const auto got = upsample2x_blur_winograd(x, w, 4.0, c.band);
        ASSERT_EQ(got.sizes(), exact.sizes());
        EXPECT_TRUE(got.is_contiguous(at::MemoryFormat::ChannelsLast));
        const std::string what = std::to_string(c.in) + "->" + std::to_string(c.out) + " @" +
                                 std::to_string(c.h) + "x" + std::to_string(c.w);
        EXPECT_TRUE(test::all_close(got.to(torch::kDouble), exact, 1e-5 * scale)) << what;
        // Channels-last inputs and the folded weights' tap-order strides: the same bits.
        const auto wt = w.permute({0, 2, 3, 1}).contiguous().permute({0, 3, 1, 2});
        EXPECT_TRUE(torch::equal(
            upsample2x_blur_winograd(x.contiguous(at::MemoryFormat::ChannelsLast), wt, 4.0, c.band),
            got))
            << what;
        if (c.batch == 2) {  // a render's pixels must not depend on --threads or --workers
            IntraOpThreadsScope two(2);
            EXPECT_TRUE(torch::equal(upsample2x_blur_winograd(x, w, 4.0, c.band), got)) << what;
        }
    }
}

// Noise, bias and activation as the tap-plane form applies them.
TEST(WinogradUp, EpilogueEqualsTheTapPlaneForm) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(12);
    const auto x = torch::randn({2, 24, 10, 7});
    const auto w = torch::randn({40, 24, 3, 3}) / std::sqrt(9.0 * 24);
    const auto noise = torch::randn({2, 1, 17, 11});
    const auto bias = torch::randn({40});
    for (bool with_noise : {false, true}) {
        UpsampleEpilogue e;
        e.bias = bias.data_ptr<float>();
        if (with_noise) {
            e.noise = noise.data_ptr<float>();
            e.noise_weight = 0.3f;
        }
        const auto taps = upsample2x_blur(x, w, 4.0, 0, 0, &e);
        const auto got = upsample2x_blur_winograd(x, w, 4.0, 0, &e);
        EXPECT_TRUE(test::all_close(got, taps, 1e-5 * taps.abs().max().item<double>()))
            << with_noise;
    }
}

// A crop of the input gives the same crop of the output, to rounding only: the tile grid moves
// with the input's corner, as a canvas tile's start moves it.
TEST(WinogradUp, CroppedInputGivesTheCropOfTheOutput) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(13);
    const auto x = torch::randn({1, 16, 21, 26});
    const auto w = torch::randn({16, 16, 3, 3}) / std::sqrt(9.0 * 16);
    const auto full = upsample2x_blur_winograd(x, w, 4.0);
    const double tol = 1e-5 * full.abs().max().item<double>();
    for (int64_t dy : {1, 2, 3})
        for (int64_t dx : {0, 1, 5}) {
            const auto part = upsample2x_blur_winograd(x.narrow(2, dy, 12).narrow(3, dx, 15), w, 4.0);
            EXPECT_TRUE(test::all_close(part, full.narrow(2, 2 * dy, 21).narrow(3, 2 * dx, 27), tol))
                << dy << "," << dx;
        }
}

TEST(WinogradUp, FormsChooseTheLayer) {
    {
        UpFormScope taps(UpForm::taps);
        EXPECT_FALSE(winograd_up_suits(512, 512, 141, 141));
    }
    UpFormScope automatic(UpForm::automatic);
    EXPECT_TRUE(winograd_up_suits(512, 512, 141, 141));
    EXPECT_TRUE(winograd_up_suits(256, 512, 64, 300));
    EXPECT_FALSE(winograd_up_suits(512, 512, 39, 39));   // small: the weight transform dominates
    EXPECT_FALSE(winograd_up_suits(64, 64, 137, 137));   // narrow: the channels-last tap planes
    UpFormScope winograd(UpForm::winograd);
    EXPECT_TRUE(winograd_up_suits(8, 3, 2, 2));
    for (auto f : {UpForm::automatic, UpForm::taps, UpForm::winograd})
        EXPECT_STRNE(up_form_name(f), "");
}

// The render contract with the up layers by Winograd: the micro model and a 128-channel one
// (the paper's widths, cheaply; its inputs are below the automatic form's 64 px) forced to it.
TEST(WinogradUp, TiledRenderEqualsDirect) {
    auto wide = test::micro_generator_config();
    wide.ts_conv_out_channels = {128, 128, 128, 128};
    for (const auto& config : {test::micro_generator_config(), wide}) {
        UpFormScope restore(cpu_up_form());
        test::expect_form_keeps_render_contract(
            config, [](bool winograd) { set_cpu_up_form(winograd ? UpForm::winograd : UpForm::taps); },
            "Winograd up layers");
    }
}

}  // namespace
}  // namespace igan
