#pragma once
// Progress of long operations, reported through a callback: the library never prints.
#include <cstdint>
#include <functional>
#include <string>

namespace igan {

struct Progress {
    int64_t done = 0, total = 0;
    double elapsed_s = 0;
    std::string detail;  // e.g. the current loss of an optimisation
};
using ProgressFn = std::function<void(const Progress&)>;

}  // namespace igan
