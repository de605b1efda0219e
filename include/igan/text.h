#pragma once
// Small text parsers shared by the front ends (the CLI, the server's routes, style centres).
#include <cstdint>
#include <string>
#include <vector>

namespace igan {

// Every field between separators, empty ones included ("a,,b" has three).
std::vector<std::string> split_fields(const std::string& text, char sep);
// Plain decimal only: an optional '-' (signed) and 1..20 digits, no spaces, '+', hex or overflow.
bool parse_int64(const std::string& text, int64_t* out);
bool parse_uint64(const std::string& text, uint64_t* out);

}  // namespace igan
