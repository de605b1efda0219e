#include "model/state.h"

#include <sstream>

#include "core/error.h"

namespace igan {

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module) {
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : module.named_parameters(true)) out[p.key()] = p.value();
    for (const auto& b : module.named_buffers(true)) out[b.key()] = b.value();
    return out;
}

std::string shape_str(at::IntArrayRef sizes) {
    std::ostringstream s;
    s << sizes;
    return s.str();
}

std::map<std::string, TensorSpec> specs_of(const std::map<std::string, torch::Tensor>& tensors) {
    std::map<std::string, TensorSpec> out;
    for (const auto& [key, t] : tensors) out[key] = {t.sizes().vec(), t.scalar_type()};
    return out;
}

std::vector<std::string> state_problems(const std::map<std::string, torch::Tensor>& expected,
                                        const std::map<std::string, TensorSpec>& found) {
    std::vector<std::string> problems;
    for (const auto& [key, target] : expected) {
        auto it = found.find(key);
        if (it == found.end()) {
            problems.push_back("missing " + key + " " + shape_str(target.sizes()));
        } else if (target.sizes() != at::IntArrayRef(it->second.sizes)) {
            problems.push_back("wrong shape for " + key + ": file has " +
                               shape_str(it->second.sizes) + ", model expects " +
                               shape_str(target.sizes()));
        } else if (!at::isFloatingType(it->second.dtype)) {
            problems.push_back("wrong dtype for " + key + ": " + c10::toString(it->second.dtype) +
                               ", expected a floating-point tensor");
        }
    }
    for (const auto& [key, shape] : found)
        if (!expected.count(key))
            problems.push_back("unexpected " + key + " " + shape_str(shape.sizes));
    return problems;
}

void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& state,
                     const std::string& source) {
    auto targets = state_dict(module);
    const auto problems = state_problems(targets, specs_of(state));
    if (!problems.empty()) {
        std::string msg = source + ": weights do not match the model (" +
                          std::to_string(problems.size()) + " problems): ";
        for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
        throw Error(msg);
    }
    torch::NoGradGuard no_grad;
    for (auto& [key, target] : targets) target.copy_(state.at(key));
}

int64_t count_parameters(const torch::nn::Module& module) {
    int64_t n = 0;
    for (const auto& p : module.parameters(true)) n += p.numel();
    return n;
}

}  // namespace igan
