#include "igan/version.h"

namespace igan {

namespace detail {
const char* git_describe();  // generated at build time (cmake/version.cmake)
}

std::string version_string() { return detail::git_describe(); }

}  // namespace igan
