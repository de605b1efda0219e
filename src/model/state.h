#pragma once
// State dicts: every parameter and buffer of a module under its dotted key.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace igan {

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);

std::string shape_str(at::IntArrayRef sizes);  // "[3, 64]"

// What a file holds for one tensor: enough to check it against a module before reading it.
struct TensorSpec {
    std::vector<int64_t> sizes;
    at::ScalarType dtype = at::kFloat;
};
std::map<std::string, TensorSpec> specs_of(const std::map<std::string, torch::Tensor>& tensors);

// The one listing of why `found` does not load into `expected` (a module's tensors by key), one
// line per problem: "missing K [..]", "wrong shape for K: file has [..], model expects [..]",
// "wrong dtype for K: Int, expected a floating-point tensor", "unexpected K [..]". Empty when
// every key matches. Strict loaders throw all of them at once.
std::vector<std::string> state_problems(const std::map<std::string, torch::Tensor>& expected,
                                        const std::map<std::string, TensorSpec>& found);

// Copies every tensor of `state` into `module`. Strict: the state_problems are thrown as one
// igan::Error naming `source`.
void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& state,
                     const std::string& source);

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace igan
