#pragma once
// Strict parsing of the tile server's URLs: every number is plain decimal that fits its type,
// every tile stays within the canvas limit (+-2^60), and anything else is a 4xx with a reason.
#include <cstdint>
#include <string>
#include <vector>

#include "igan/igan.h"
#include "igan/serve.h"
#include "igan/text.h"  // parse_int64, parse_uint64

namespace igan {

constexpr int64_t kCanvasLimit = int64_t{1} << 60;
constexpr int kMinZoomLimit = -4;
// Zoom of the native level in the /xyz/ scheme, whose zooms are non-negative as TileJSON and web
// map clients require: xyz zoom = z + kXyzNativeZoom.
constexpr int kXyzNativeZoom = -kMinZoomLimit;

// .png, .webp, or no extension: the Accept header chooses (Vary: Accept).
enum class TileFormat { kPng, kWebp, kNegotiated };

struct TileAddress {
    std::string model;
    uint64_t seed = 0;
    int z = 0;
    int64_t x = 0, y = 0;
    int scale = 1;  // 2: "@2x", a tile of twice the side over the same canvas area
    TileFormat format = TileFormat::kPng;
};

// The outcome of parsing: status 200, or the HTTP status (400, 404) and a reason.
struct ParseStatus {
    int status = 200;
    std::string error;
    bool ok() const { return status == 200; }
};

// Model names: 1..64 of [A-Za-z0-9._-], not starting with '.'.
bool valid_model_name(const std::string& name);

// `rest` is what follows "/tiles/": "{model}/{seed}/{z}/{x}/{y}{@2x}{.png|.webp}", z in
// [min_zoom, 0], or "{model}/{seed}/xyz/{zoom}/{x}/{y}..." with zoom = z + kXyzNativeZoom.
// Checks the syntax and the canvas limit; not whether the model exists.
ParseStatus parse_tile_path(const std::string& rest, int min_zoom, int64_t tile_size,
                            TileAddress* out);

// The image format an Accept header prefers among PNG and WebP: WebP when it is listed with
// q > 0 (it is the smaller), else PNG.
TileFormat negotiate_format(const std::string& accept);

// WebP quality from a query: "lossless" (kWebpLossless) or an integer in [1, 100].
ParseStatus parse_webp_quality(const std::string& text, int* out);

// Canvas pixels covered by a tile: [x0, x0 + side) x [y0, y0 + side), side = tile_size * 2^-z.
struct TileRegion {
    int64_t x0 = 0, y0 = 0, side = 0;
};
TileRegion tile_region(const TileAddress& t, int64_t tile_size);
// Whether the tile lies within +-kCanvasLimit (no overflow on the way).
bool tile_in_canvas(const TileAddress& t, int64_t tile_size);

// Style fusion for /tiles and /render: fuse=SEED:X:Y,SEED:X:Y,... (parse_integer_style_centres:
// at most kMaxFuseCentres distinct integer centres within +-2^60) and band=B (integer pixels in
// [1, 10^6], default 128). `key` is a canonical form for cache keys and ETags; empty without
// fusion.
constexpr size_t kMaxFuseCentres = 16;
struct Fusion {
    std::vector<StyleCentre> styles;
    double band = 128;
    std::string key;
};
ParseStatus parse_fusion(const std::string& fuse, const std::string& band, Fusion* out);

}  // namespace igan
