// Style centres as text: one parser for every front end (the CLI's --styles, the server's fuse=).
#include <cmath>
#include <sstream>

#include "igan/igan.h"

namespace igan {

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, sep)) parts.push_back(part);
    return parts;
}

double number(const std::string& text, const std::string& spec) {
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || !std::isfinite(v))
        throw UsageError("style centres '" + spec + "': '" + text + "' is not a number");
    return v;
}

}  // namespace

std::vector<StyleCentre> parse_style_centres(const std::string& spec) {
    // SEED:X:Y,SEED:X:Y (URL-safe, the documented form) or the older SEED@X,Y;SEED@X,Y.
    const bool older = spec.find('@') != std::string::npos;
    std::vector<StyleCentre> centres;
    for (const auto& part : split(spec, older ? ';' : ',')) {
        if (part.empty()) continue;
        std::vector<std::string> fields;
        if (older) {
            const auto at = part.find('@');
            const auto xy = split(part.substr(at == std::string::npos ? 0 : at + 1), ',');
            fields = {part.substr(0, at)};
            fields.insert(fields.end(), xy.begin(), xy.end());
        } else {
            fields = split(part, ':');
        }
        if (fields.size() != 3)
            throw UsageError("style centres '" + spec + "': expected SEED:X:Y,SEED:X:Y,...");
        const double seed = number(fields[0], spec);
        if (seed < 0 || seed != std::floor(seed) || seed > 9.0e15)
            throw UsageError("style centres '" + spec + "': seeds are non-negative integers");
        centres.push_back({uint64_t(seed), number(fields[1], spec), number(fields[2], spec)});
    }
    if (centres.empty()) throw UsageError("no style centres: give at least one SEED:X:Y");
    return centres;
}

}  // namespace igan
