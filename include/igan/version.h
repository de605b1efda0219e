#pragma once
#include <string>

namespace igan {

// `git describe` of the source tree at build time ("v0.1.0" outside a git checkout).
std::string version_string();

}  // namespace igan
