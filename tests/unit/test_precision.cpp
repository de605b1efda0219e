// Rendering at reduced precision (--precision, model/precision.h) and the up layer's CUDA forms
// (IGAN_CUDA_UP), on the CPU: bf16 against fp32 on the golden model, the tiling contract in
// bf16, the refusals of what the CPU cannot run, and every form against the transposed
// convolution.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "model/layers.h"
#include "model/precision.h"
#include "weights/model_file.h"

namespace igan {
namespace {

// bf16 keeps 8 significant bits: every convolution's inputs and output round by up to 2^-9
// relative, layer after layer. Measured on the [-1, 1] scale: at most
// 0.070 (9 levels of 8 bits), 0.012 on average (1.6 levels).
constexpr double kBf16MaxTol = 0.1, kBf16MeanTol = 0.02;

std::unique_ptr<StyledGenerator> golden_model() {
    const auto dir = test::data_path("golden/");
    auto g = load_generator(dir + "generator.safetensors", dir + "config.json").generator;
    return StyledGenerator::for_seed(g, torch::kCPU, 1);
}

RenderOptions in_precision(RenderOptions o, Precision p) {
    o.precision = p;
    return o;
}

TEST(Precision, NamesRoundTripAndUnknownOnesAreRefused) {
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16, Precision::fp16})
        EXPECT_EQ(parse_precision(precision_name(p)), p);
    EXPECT_THROW(parse_precision("fp64"), UsageError);
}

// tf32 and fp16 need CUDA: a usage error naming the fix; fp32 and bf16 run on the CPU.
TEST(Precision, TheCpuRefusesTf32AndFp16) {
    for (Precision p : {Precision::tf32, Precision::fp16}) {
        const auto what = test::error_of([&] { check_precision(p, torch::kCPU); });
        EXPECT_NE(what.find("--device cuda"), std::string::npos) << what;
        EXPECT_NE(what.find("use --precision fp32 or bf16"), std::string::npos) << what;
        EXPECT_THROW(check_precision(p, torch::kCPU), UsageError);
    }
    EXPECT_NO_THROW(check_precision(Precision::fp32, torch::kCPU));
    EXPECT_NO_THROW(check_precision(Precision::bf16, torch::kCPU));
}

TEST(Precision, ScopesNestAndRestore) {
    EXPECT_EQ(conv_dtype(), torch::kFloat);
    {
        const PrecisionScope bf16(Precision::bf16);
        EXPECT_EQ(conv_dtype(), torch::kBFloat16);
        {
            const PrecisionScope tf32(Precision::tf32);
            EXPECT_EQ(conv_dtype(), torch::kFloat);
        }
        EXPECT_EQ(conv_dtype(), torch::kBFloat16);
    }
    EXPECT_EQ(conv_dtype(), torch::kFloat);
}

// bf16 on the golden model: close to fp32, float32 out, and the fp32 render after it unchanged
// (the scope does not leak).
TEST(Precision, Bf16RendersCloseToFp32OnTheGoldenModel) {
    auto model = golden_model();
    const Rect r{-40, -30, 72, 48};
    const auto fp32 = render_region(*model, r, test::opts(72));
    const auto bf16 = render_region(*model, r, in_precision(test::opts(72), Precision::bf16));
    EXPECT_EQ(bf16.scalar_type(), torch::kFloat);
    EXPECT_TRUE(test::all_close(bf16, fp32, kBf16MaxTol));
    EXPECT_LT((bf16 - fp32).abs().mean().item<double>(), kBf16MeanTol);
    EXPECT_GT((bf16 - fp32).abs().max().item<double>(), 0) << "bf16 did not run";
    EXPECT_TRUE(torch::equal(render_region(*model, r, test::opts(72)), fp32));
}

// The render contract within bf16: tiles and batches do not change the canvas beyond the
// rounding of sums that convolutions of other sizes order differently (a bf16 output may then
// round to the neighbouring value, 2^-8 relative, and carry that through later layers).
// Measured: equal bit for bit (bf16's rounding absorbs float32's differences of order 1e-7).
TEST(Precision, Bf16TiledEqualsDirect) {
    auto model = golden_model();
    const Rect r{13, -21, 61, 45};
    const auto direct = render_region(*model, r, in_precision(test::opts(61), Precision::bf16));
    const auto tiled = render_region(*model, r, in_precision(test::opts(24, 2), Precision::bf16));
    EXPECT_TRUE(test::all_close(tiled, direct, 1e-2));
}

// Every form of the up layer's cropped transposed convolution equals LibTorch's, odd and even
// sizes, a batch, and more output than input channels.
TEST(UpsampleForms, EqualTheTransposedConvolution) {
    torch::NoGradGuard no_grad;
    torch::manual_seed(11);
    const auto x = torch::randn({2, 5, 7, 6}), w = torch::randn({9, 5, 3, 3});
    const auto ref = conv_transpose2x_cropped(x, w);
    for (auto form : {UpsampleForm::transpose, UpsampleForm::phases, UpsampleForm::taps}) {
        const auto y = upsample_conv_in_form(x, w, form);
        EXPECT_EQ(y.sizes(), ref.sizes()) << upsample_form_name(form);
        EXPECT_TRUE(test::all_close(y, ref, 1e-5, 1e-5)) << upsample_form_name(form);
    }
}

}  // namespace
}  // namespace igan
