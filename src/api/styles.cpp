// Style centres as text: one parser for every front end (the CLI's --styles, the server's fuse=),
// with decimal positions (the CLI's) or exact integer ones (the server's).
#include <array>
#include <cmath>
#include <utility>

#include "igan/igan.h"
#include "igan/text.h"

namespace igan {

namespace {

// The grammar, shared by both modes: SEED:X:Y separated by ',' or the older SEED@X,Y separated
// by ';', as the three fields' text.
std::vector<std::array<std::string, 3>> centre_fields(const std::string& spec) {
    if (spec.empty()) throw UsageError("no style centres: give at least one SEED:X:Y");
    const bool older = spec.find('@') != std::string::npos;
    std::vector<std::array<std::string, 3>> centres;
    for (const auto& part : split_fields(spec, older ? ';' : ',')) {
        std::vector<std::string> fields;
        const auto at = part.find('@');
        if (!older) {
            fields = split_fields(part, ':');
        } else if (at != std::string::npos) {
            fields = split_fields(part.substr(at + 1), ',');
            fields.insert(fields.begin(), part.substr(0, at));
        }
        if (fields.size() != 3)
            throw UsageError("style centres '" + spec + "': expected SEED:X:Y,SEED:X:Y,...");
        centres.push_back({fields[0], fields[1], fields[2]});
    }
    return centres;
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

uint64_t seed_of(const std::string& text, const std::string& spec) {
    uint64_t seed = 0;
    if (parse_uint64(text, &seed)) return seed;
    number(text, spec);  // names what is not a number at all
    throw UsageError("style centres '" + spec + "': seeds are non-negative integers");
}

}  // namespace

std::vector<StyleCentre> parse_style_centres(const std::string& spec) {
    std::vector<StyleCentre> centres;
    for (const auto& [seed, x, y] : centre_fields(spec))
        centres.push_back({seed_of(seed, spec), number(x, spec), number(y, spec)});
    return centres;
}

std::vector<IntegerStyleCentre> parse_integer_style_centres(const std::string& spec) {
    std::vector<IntegerStyleCentre> centres;
    for (const auto& [seed, x, y] : centre_fields(spec)) {
        IntegerStyleCentre c;
        c.seed = seed_of(seed, spec);
        for (const auto& [text, value] : {std::pair{&x, &c.x}, std::pair{&y, &c.y}})
            if (!parse_int64(*text, value))
                throw UsageError("style centres '" + spec + "': '" + *text +
                                 "' is not a decimal integer");
        centres.push_back(c);
    }
    return centres;
}

}  // namespace igan
