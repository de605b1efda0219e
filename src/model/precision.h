#pragma once
// Rendering at reduced precision (`--precision`, docs/gpu.md): a forward pass runs its
// convolutions in the precision of the scope it runs in; everything else (latent and noise
// fields, styles, modulation, blur, noise, activations) stays float32, and every convolution's
// result comes back as float32, so a canvas keeps its layout and quantisation is unchanged.
#include <torch/torch.h>

#include <string>

namespace igan {

enum class Precision { fp32, tf32, bf16, fp16 };

// "fp32", "tf32", "bf16" or "fp16"; throws UsageError naming the choices.
Precision parse_precision(const std::string& name);
const char* precision_name(Precision p);
// Throws UsageError naming the fix where `device` cannot run `p`: tf32 and fp16 need CUDA
// (LibTorch's CPU convolutions have no float16 kernels; TF32 is a CUDA tensor-core format).
void check_precision(Precision p, const torch::Device& device);
// LibTorch's process-wide TF32 switches for cuDNN and cuBLAS: on for tf32 only, so that fp32
// is IEEE float32 on CUDA too (LibTorch lets cuDNN use TF32 by default). Call before rendering
// on CUDA; the last call wins for the whole process.
void use_cuda_math(Precision p);

// The precision of the convolutions run on this thread while the scope is open (nested scopes
// restore the outer one). tf32 and fp32 keep float32 tensors (TF32 is use_cuda_math's).
class PrecisionScope {
public:
    explicit PrecisionScope(Precision p);
    ~PrecisionScope();
    PrecisionScope(const PrecisionScope&) = delete;
    PrecisionScope& operator=(const PrecisionScope&) = delete;

private:
    Precision outer_;
};

// The dtype this thread's convolutions run in: float, bfloat16 or half.
torch::ScalarType conv_dtype();

}  // namespace igan
