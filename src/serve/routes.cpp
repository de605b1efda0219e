#include "serve/routes.h"

#include <cstdlib>
#include <vector>

namespace igan {

bool valid_model_name(const std::string& name) {
    if (name.empty() || name.size() > 64 || name[0] == '.') return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

TileRegion tile_region(const TileAddress& t, int64_t tile_size) {
    TileRegion r;
    r.side = tile_size << (-t.z);
    r.x0 = t.x * r.side;
    r.y0 = t.y * r.side;
    return r;
}

bool tile_in_canvas(const TileAddress& t, int64_t tile_size) {
    if (t.z > 0 || t.z < kMinZoomLimit || tile_size <= 0 || tile_size > 65536) return false;
    const __int128 side = __int128(tile_size) << (-t.z);
    auto inside = [&](int64_t i) {
        const __int128 lo = __int128(i) * side, hi = (__int128(i) + 1) * side;
        return lo >= -__int128(kCanvasLimit) && hi <= __int128(kCanvasLimit);
    };
    return inside(t.x) && inside(t.y);
}

ParseStatus parse_tile_path(const std::string& rest, int min_zoom, int64_t tile_size,
                            TileAddress* out) {
    auto bad = [](int status, std::string why) { return ParseStatus{status, std::move(why)}; };
    auto parts = split_fields(rest, '/');
    const bool xyz = parts.size() == 6 && parts[2] == "xyz";
    if (xyz) parts.erase(parts.begin() + 2);
    if (parts.size() != 5) return bad(404, "expected /tiles/{model}/{seed}/{z}/{x}/{y}.png");
    TileAddress t;
    std::string last = parts[4];
    const size_t dot = last.find('.');
    if (dot != std::string::npos) {
        const std::string ext = last.substr(dot);
        if (ext == ".png")
            t.format = TileFormat::kPng;
        else if (ext == ".webp")
            t.format = TileFormat::kWebp;
        else
            return bad(404, "tiles end in .png, .webp or nothing (the Accept header chooses)");
        last.resize(dot);
    } else {
        t.format = TileFormat::kNegotiated;
    }
    if (last.size() > 3 && last.compare(last.size() - 3, 3, "@2x") == 0) {
        t.scale = 2;
        last.resize(last.size() - 3);
    }
    if (last.empty()) return bad(404, "a tile needs a y");
    t.model = parts[0];
    if (!valid_model_name(t.model)) return bad(404, "no such model");
    if (!parse_uint64(parts[1], &t.seed))
        return bad(400, "seed must be an unsigned 64-bit integer");
    int64_t z = 0;
    const int64_t shift = xyz ? kXyzNativeZoom : 0;
    if (!parse_int64(parts[2], &z) || z - shift > 0 || z - shift < min_zoom)
        return bad(400, "zoom must be an integer in [" + std::to_string(min_zoom + shift) + ", " +
                            std::to_string(shift) + "]");
    t.z = int(z - shift);
    if (!parse_int64(parts[3], &t.x) || !parse_int64(last, &t.y))
        return bad(400, "tile x and y must be 64-bit integers");
    if (!tile_in_canvas(t, tile_size)) return bad(400, "tile outside the canvas (+-2^60 pixels)");
    *out = t;
    return {};
}

TileFormat negotiate_format(const std::string& accept) {
    for (const auto& range : split_fields(accept, ',')) {
        const auto params = split_fields(range, ';');
        auto trim = [](std::string s) {
            const size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
            return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
        };
        if (trim(params[0]) != "image/webp") continue;
        double q = 1;
        for (size_t i = 1; i < params.size(); ++i) {
            const std::string p = trim(params[i]);
            if (p.rfind("q=", 0) == 0) q = std::strtod(p.c_str() + 2, nullptr);
        }
        if (q > 0) return TileFormat::kWebp;
    }
    return TileFormat::kPng;
}

ParseStatus parse_webp_quality(const std::string& text, int* out) {
    if (text == "lossless") {
        *out = kWebpLossless;
        return {};
    }
    int64_t q = 0;
    if (!parse_int64(text, &q) || q < 1 || q > 100)
        return {400, "quality must be 'lossless' or an integer in [1, 100]"};
    *out = int(q);
    return {};
}

ParseStatus parse_fusion(const std::string& fuse, const std::string& band, Fusion* out) {
    auto bad = [](std::string why) { return ParseStatus{400, std::move(why)}; };
    Fusion f;
    if (!band.empty()) {
        int64_t b = 0;
        if (!parse_int64(band, &b) || b < 1 || b > 1000000)
            return bad("band must be an integer in [1, 1000000]");
        f.band = double(b);
    }
    if (fuse.empty()) {
        *out = f;
        return {};
    }
    std::vector<IntegerStyleCentre> centres;
    try {
        centres = parse_integer_style_centres(fuse);
    } catch (const UsageError&) {
        return bad("fuse must be SEED:X:Y,SEED:X:Y,... with integers");
    }
    if (centres.size() > kMaxFuseCentres)
        return bad("at most " + std::to_string(kMaxFuseCentres) + " fusion centres");
    for (size_t i = 0; i < centres.size(); ++i) {
        const auto& c = centres[i];
        if (c.x < -kCanvasLimit || c.x > kCanvasLimit || c.y < -kCanvasLimit || c.y > kCanvasLimit)
            return bad("fusion centres must lie within +-2^60");
        for (size_t j = 0; j < i; ++j)
            if (centres[j].x == c.x && centres[j].y == c.y)
                return bad("two fusion centres share a point");
        f.styles.push_back({c.seed, double(c.x), double(c.y)});
        f.key += (f.key.empty() ? "" : ",") + std::to_string(c.seed) + ":" +
                 std::to_string(c.x) + ":" + std::to_string(c.y);
    }
    f.key = "fuse=" + f.key + "&band=" + std::to_string(int64_t(f.band));
    *out = f;
    return {};
}

}  // namespace igan
