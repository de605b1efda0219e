#pragma once
// The exceptions every igan library throws; programs catch igan::Error (exit 1) and
// igan::UsageError (exit 2).
#include <stdexcept>
#include <string>

namespace igan {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Errors in what the user asked for (exit code 2 in the CLI), as opposed to failures.
class UsageError : public Error {
public:
    explicit UsageError(const std::string& what) : Error(what) {}
};

}  // namespace igan
