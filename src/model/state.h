#pragma once
// State dicts: every parameter and buffer of a module under its dotted key.
#include <torch/torch.h>

#include <map>
#include <string>

namespace igan {

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);

// Copies every tensor of `state` into `module`. Strict: missing, unexpected and mis-shaped
// tensors are all collected and thrown as one igan::Error naming `source`.
void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& state,
                     const std::string& source);

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace igan
