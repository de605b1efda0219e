#pragma once
// StyleGAN2 building blocks without zero padding, as InfinityGAN uses them
// (models/ops.py and models/infinitygan_generator.py of hubert0527/infinityGAN @ a9b45dd).
// Parameter names equal the original state-dict keys; weights are stored un-scaled and the
// equalised-learning-rate scales are applied at run time.
#include <torch/torch.h>

#include "model/layer_clock.h"

namespace igan {

// y = leaky_relu(x + bias[channel], 0.2) * sqrt(2); the channel axis is dim 1.
torch::Tensor fused_leaky_relu(const torch::Tensor& x, const torch::Tensor& bias);
// Valid 3x3 blur by [1,2,1]x[1,2,1]/16, times `gain`; H -> H-2.
torch::Tensor blur3_valid(const torch::Tensor& x, double gain);
// The stride-2 transposed convolution of x (B, in, H, W) by w (out, in, 3, 3) (conv layout),
// cropped by one pixel per side: (B, out, 2H-1, 2W-1).
torch::Tensor conv_transpose2x_cropped(const torch::Tensor& x, const torch::Tensor& w);
// How that convolution runs at inference on CUDA (IGAN_CUDA_UP, docs/gpu.md): LibTorch's
// transposed convolution; `phases`, one ordinary convolution per output phase in channels-last
// (the 3x3 kernel's 1x1, 1x2, 2x1 and 2x2 sub-kernels: the same MACs, in the form cuDNN runs
// fastest); or `taps`, one matrix product giving the nine tap planes, summed into place by
// tensor operations.
enum class UpsampleForm { transpose, phases, taps };
// conv_transpose2x_cropped(x, w) in that form, on any device (equal within float rounding).
torch::Tensor upsample_conv_in_form(const torch::Tensor& x, const torch::Tensor& w,
                                    UpsampleForm form);
// The form IGAN_CUDA_UP names (transpose, phases or taps; unset: phases), read once; throws
// Error for another value.
UpsampleForm cuda_upsample_form();
const char* upsample_form_name(UpsampleForm form);
// At inference (no gradients, float CPU), the same as one matrix product giving every output
// channel's nine tap planes x * w[ky][kx], (B, 9 * out, H, W): exactly the transposed
// convolution's MACs and no im2col. interleave_taps sums them into conv_transpose2x_cropped's
// (B, out, 2H-1, 2W-1).
torch::Tensor upsample_taps(const torch::Tensor& x, const torch::Tensor& w);
torch::Tensor interleave_taps(const torch::Tensor& taps);
// What a StyledConv does after its up layer's blur: + noise * noise_weight (noise: (B, 1, H',
// W') contiguous, or null) + bias[channel], leaky ReLU, times sqrt(2).
struct UpsampleEpilogue {
    const float* noise = nullptr;
    float noise_weight = 0;
    const float* bias = nullptr;  // one per output channel
};
// blur3_valid(interleave_taps(upsample_taps(x, w)), gain) a band of about `band_columns`
// input pixels at a time, `channel_block` output channels at a time (0: the defaults), so that
// only one block's tap planes for one band exist at once; with an epilogue, that applied to
// each output row as it is made.
torch::Tensor upsample2x_blur(const torch::Tensor& x, const torch::Tensor& w, double gain,
                              int64_t band_columns = 0, int64_t channel_block = 0,
                              const UpsampleEpilogue* epilogue = nullptr);
// Input rows per band of upsample2x_blur for an h x w input (at least one, at most h), and
// output channels per block for bands of band_columns input pixels (at least one).
int64_t upsample_band_rows(int64_t h, int64_t w, int64_t band_columns = 0);
int64_t upsample_channel_block(int64_t channels, int64_t band_columns, int64_t channel_block = 0);
// Centre crop of the last two dims to (h, w).
torch::Tensor center_crop(const torch::Tensor& x, int64_t h, int64_t w);

// A bias followed by the fused leaky ReLU (key: "<name>.bias").
class BiasActImpl : public torch::nn::Module {
public:
    explicit BiasActImpl(int64_t channels);
    torch::Tensor forward(const torch::Tensor& x) { return fused_leaky_relu(x, bias); }
    torch::Tensor bias;
};
TORCH_MODULE(BiasAct);

// Holds a fixed FIR kernel buffer under the key "<name>.kernel".
class KernelBufferImpl : public torch::nn::Module {
public:
    explicit KernelBufferImpl(torch::Tensor k) { kernel = register_buffer("kernel", std::move(k)); }
    torch::Tensor kernel;
};
TORCH_MODULE(KernelBuffer);

class EqualLinearImpl : public torch::nn::Module {
public:
    EqualLinearImpl(int64_t in, int64_t out, double lr_mul = 1.0, double bias_init = 0.0,
                    bool activate = false);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight, bias;
    double lr_mul, scale;
    bool activate;
};
TORCH_MODULE(EqualLinear);

// A per-pixel style (spatial style fusion): N palette styles mixed by weights that sum to 1 at
// every pixel of the layer's input. Modulation is affine, so mixing the modulations equals
// modulating with the mixed style.
struct StyleMix {
    torch::Tensor palette;  // (N, style_dim)
    torch::Tensor weights;  // (B, N, H, W) at the layer input's size
};

// Modulated convolution. A style with batch 1 is folded into the weights (one ordinary
// convolution for the whole batch); otherwise the input is modulated and the output
// demodulated per sample, which equals the original's grouped convolution.
class ModulatedConv2dImpl : public torch::nn::Module {
public:
    ModulatedConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim, bool demodulate,
                        bool upsample);
    // x: (B, in, H, W); style: (B or 1, style_dim) -> (B, out, H', W') with
    // H' = H - k + 1 (plain) or 2H - 3 (upsampling, k = 3).
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& style);
    // Per-pixel style: modulate the input, convolve, demodulate per output pixel
    // (docs/applications.md, style fusion; the demodulation map upsampled as the features are).
    torch::Tensor forward_mixed(const torch::Tensor& x, const StyleMix& style);
    // The weights modulated (and demodulated) by one style (1, style_dim): (out, in, k, k).
    torch::Tensor folded_weight(const torch::Tensor& style);
    // The same at inference on the CPU, in two passes over the weights instead of seven, laid out
    // as the up layer's tap matrix ((out, k, k, in) in memory), which then needs no copy.
    torch::Tensor folded_weight_tap_order(const torch::Tensor& style);
    torch::Tensor weight;
    EqualLinear modulation{nullptr};
    KernelBuffer blur{nullptr};
    int64_t in_channels, out_channels, kernel;
    bool demodulate, upsample;
    double scale;
};
TORCH_MODULE(ModulatedConv2d);

class NoiseInjectionImpl : public torch::nn::Module {
public:
    NoiseInjectionImpl();
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& noise);
    torch::Tensor weight;
};
TORCH_MODULE(NoiseInjection);

class StyledConvImpl : public torch::nn::Module {
public:
    StyledConvImpl(int64_t in, int64_t out, int64_t kernel, int64_t style_dim, bool upsample,
                   bool use_noise);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& style,
                          const torch::Tensor& noise = {});
    torch::Tensor forward_mixed(const torch::Tensor& x, const StyleMix& style,
                          const torch::Tensor& noise = {});
    ModulatedConv2d conv{nullptr};
    NoiseInjection noise{nullptr};
    BiasAct activate{nullptr};

private:
    torch::Tensor add_noise_and_activate(torch::Tensor y, const torch::Tensor& noise_map);
    // Times the call on x for igan bench's per-kind fractions: the texture synthesizer's
    // convolutions (the ones with noise) as `up` or `conv3x3`, the structure synthesizer's not.
    LayerClockScope clock(const torch::Tensor& x) const;
};
TORCH_MODULE(StyledConv);

class ToRGBImpl : public torch::nn::Module {
public:
    ToRGBImpl(int64_t in, int64_t style_dim);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& style,
                          const torch::Tensor& skip = {});
    torch::Tensor forward_mixed(const torch::Tensor& x, const StyleMix& style,
                          const torch::Tensor& skip = {});
    ModulatedConv2d conv{nullptr};
    torch::Tensor bias;
    KernelBuffer upsample{nullptr};

private:
    torch::Tensor add_skip(torch::Tensor rgb, const torch::Tensor& skip);
};
TORCH_MODULE(ToRGB);

// The [1,2,1]x[1,2,1]/16*4 kernel the generator's blur and skip-upsample buffers hold.
torch::Tensor generator_blur_kernel();

}  // namespace igan
