#include "core/device.h"

#include "core/error.h"

namespace igan {

torch::Device parse_device(const std::string& name) {
    if (name == "cpu") return torch::kCPU;
    if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
        if (!torch::cuda::is_available())
            throw UsageError("--device " + name +
                             ": CUDA is not available (this LibTorch has no CUDA or no GPU is "
                             "visible); use --device cpu");
        return torch::Device(name);
    }
    throw UsageError("unknown device '" + name + "': use cpu or cuda");
}

}  // namespace igan
