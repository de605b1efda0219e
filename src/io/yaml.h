#pragma once
// The flat YAML of the original configs/model/*.yaml: top-level sections of `key: value` lines.
// Exactly that subset is read (scalars, flow lists [a, b], block lists "- a", comments); anything
// deeper is refused, so a config never silently means something else.
#include <nlohmann/json.hpp>
#include <string>

namespace igan {

// Throws igan::Error "<path>:<line>: <what>" on anything outside the subset.
nlohmann::json parse_flat_yaml(const std::string& text, const std::string& path);

}  // namespace igan
