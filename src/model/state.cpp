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

namespace {

std::string shape_str(const torch::Tensor& t) {
    std::ostringstream s;
    s << t.sizes();
    return s.str();
}

}  // namespace

void load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& state,
                     const std::string& source) {
    auto targets = state_dict(module);
    std::vector<std::string> problems;
    for (const auto& [key, target] : targets) {
        auto it = state.find(key);
        if (it == state.end()) {
            problems.push_back("missing " + key + " " + shape_str(target));
        } else if (it->second.sizes() != target.sizes()) {
            problems.push_back("wrong shape for " + key + ": file has " + shape_str(it->second) +
                               ", model expects " + shape_str(target));
        } else if (!it->second.is_floating_point()) {
            problems.push_back("wrong dtype for " + key + ": expected a floating-point tensor");
        }
    }
    for (const auto& [key, tensor] : state)
        if (!targets.count(key)) problems.push_back("unexpected " + key + " " + shape_str(tensor));
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
