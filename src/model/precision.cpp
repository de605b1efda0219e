#include "model/precision.h"

#include "core/error.h"

namespace igan {

namespace {

thread_local Precision t_precision = Precision::fp32;

}  // namespace

Precision parse_precision(const std::string& name) {
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16, Precision::fp16})
        if (name == precision_name(p)) return p;
    throw UsageError("unknown precision '" + name + "': use fp32, tf32, bf16 or fp16");
}

const char* precision_name(Precision p) {
    switch (p) {
        case Precision::fp32: return "fp32";
        case Precision::tf32: return "tf32";
        case Precision::bf16: return "bf16";
        case Precision::fp16: return "fp16";
    }
    return "?";
}

void check_precision(Precision p, const torch::Device& device) {
    if (device.is_cuda() || p == Precision::fp32 || p == Precision::bf16) return;
    const std::string why = p == Precision::tf32
                                ? "TF32 is a format of NVIDIA tensor cores"
                                : "LibTorch's CPU convolutions have no float16 kernels";
    throw UsageError(std::string("--precision ") + precision_name(p) + " needs --device cuda (" +
                     why + "); on the CPU use --precision fp32 or bf16");
}

void use_cuda_math(Precision p) {
    at::globalContext().setAllowTF32CuDNN(p == Precision::tf32);
    at::globalContext().setAllowTF32CuBLAS(p == Precision::tf32);
}

PrecisionScope::PrecisionScope(Precision p) : outer_(t_precision) { t_precision = p; }

PrecisionScope::~PrecisionScope() { t_precision = outer_; }

torch::ScalarType conv_dtype() {
    switch (t_precision) {
        case Precision::bf16: return torch::kBFloat16;
        case Precision::fp16: return torch::kHalf;
        default: return torch::kFloat;
    }
}

}  // namespace igan
