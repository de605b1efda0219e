#pragma once
// `igan forward`: the networks on explicit inputs, for parity with the original implementation
// (src/weights/forward.cpp).
#include <string>
#include <vector>

#include "igan/error.h"

namespace igan {

// Runs the networks on explicit inputs named as in the golden reference set and writes every
// output named as there. discriminator_path may be empty (then D outputs are skipped).
struct ForwardRequest {
    std::string model, inputs, out, discriminator, config_override, device = "cpu";
};
std::vector<std::string> run_forward(const ForwardRequest& request);  // names written

}  // namespace igan
