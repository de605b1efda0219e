#pragma once
// `--device` as every command spells it: cpu, cuda or cuda:N.
#include <torch/torch.h>

#include <string>

namespace igan {

// Throws UsageError, naming the fix, for an unknown name or CUDA that this LibTorch cannot reach.
torch::Device parse_device(const std::string& name);

}  // namespace igan
