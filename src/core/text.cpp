#include "igan/text.h"

#include <charconv>

namespace igan {

namespace {

bool all_digits(const char* b, const char* e) {
    if (b == e || e - b > 20) return false;
    for (const char* p = b; p != e; ++p)
        if (*p < '0' || *p > '9') return false;
    return true;
}

template <typename T>
bool parse_exact(const char* b, const char* e, T* out) {
    const auto r = std::from_chars(b, e, *out);
    return r.ec == std::errc() && r.ptr == e;
}

}  // namespace

std::vector<std::string> split_fields(const std::string& text, char sep) {
    std::vector<std::string> parts;
    for (size_t start = 0;;) {
        const size_t end = text.find(sep, start);
        parts.push_back(text.substr(start, end - start));
        if (end == std::string::npos) return parts;
        start = end + 1;
    }
}

bool parse_int64(const std::string& text, int64_t* out) {
    const char* b = text.data();
    const char* e = b + text.size();
    return all_digits(b + (!text.empty() && text[0] == '-' ? 1 : 0), e) && parse_exact(b, e, out);
}

bool parse_uint64(const std::string& text, uint64_t* out) {
    const char* b = text.data();
    const char* e = b + text.size();
    return all_digits(b, e) && parse_exact(b, e, out);
}

}  // namespace igan
