#pragma once
// Run-time switches read from the environment (IGAN_CPU_CONV3X3, IGAN_CUDA_UP, ...).
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "core/error.h"

namespace igan {

// The choice the environment variable `variable` names (each choice's name is name(choice)), or
// `fallback` when it is unset. Throws Error listing the names for any other value.
template <typename Choice>
Choice env_choice(const char* variable, Choice fallback, std::initializer_list<Choice> choices,
                  const char* (*name)(Choice)) {
    const char* env = std::getenv(variable);
    if (!env) return fallback;
    std::string names;  // "a, b or c"
    size_t k = 0;
    for (Choice c : choices) {
        if (env == std::string(name(c))) return c;
        if (k > 0) names += k + 1 == choices.size() ? " or " : ", ";
        names += name(c);
        ++k;
    }
    throw Error(std::string(variable) + "=" + env + ": use " + names);
}

}  // namespace igan
