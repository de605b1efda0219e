// WebP encoding and decoding of small in-memory images (tile server responses), through
// libwebp's simple API when CMake found it (IGAN_HAVE_WEBP).
#include <igan/image.h>

#include "core/error.h"

#ifdef IGAN_HAVE_WEBP
#include <webp/decode.h>
#include <webp/encode.h>
#endif

namespace igan {

#ifdef IGAN_HAVE_WEBP

bool webp_available() { return true; }

namespace {

std::string encode(const uint8_t* pixels, int64_t width, int64_t height, int quality, bool alpha) {
    // WebP's limit is 16383 pixels per side.
    if (width <= 0 || height <= 0 || width > WEBP_MAX_DIMENSION || height > WEBP_MAX_DIMENSION)
        throw Error("WebP cannot hold " + std::to_string(width) + "x" + std::to_string(height));
    if (quality > 100) throw Error("WebP quality must be at most 100");
    uint8_t* out = nullptr;
    const int w = int(width), h = int(height), stride = (alpha ? 4 : 3) * w;
    const float q = float(quality);
    size_t size = 0;
    if (alpha)
        size = quality < 0 ? WebPEncodeLosslessRGBA(pixels, w, h, stride, &out)
                           : WebPEncodeRGBA(pixels, w, h, stride, q, &out);
    else
        size = quality < 0 ? WebPEncodeLosslessRGB(pixels, w, h, stride, &out)
                           : WebPEncodeRGB(pixels, w, h, stride, q, &out);
    if (size == 0 || !out) {
        WebPFree(out);
        throw Error("WebP encoding failed");
    }
    std::string data(reinterpret_cast<const char*>(out), size);
    WebPFree(out);
    return data;
}

}  // namespace

std::string encode_webp(const uint8_t* rgb, int64_t width, int64_t height, int quality) {
    return encode(rgb, width, height, quality, false);
}

std::string encode_webp_rgba(const uint8_t* rgba, int64_t width, int64_t height, int quality) {
    return encode(rgba, width, height, quality, true);
}

RgbImage decode_webp(const std::string& data, int64_t max_pixels) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
    int w = 0, h = 0;
    if (!WebPGetInfo(bytes, data.size(), &w, &h)) throw Error("not a valid WebP image");
    if (int64_t(w) * h > max_pixels)
        throw Error("WebP of " + std::to_string(w) + "x" + std::to_string(h) + " is too large");
    RgbImage img;
    img.width = w;
    img.height = h;
    img.pixels.resize(size_t(3) * w * h);
    if (!WebPDecodeRGBInto(bytes, data.size(), img.pixels.data(), img.pixels.size(), 3 * w))
        throw Error("WebP decoding failed");
    return img;
}

#else

bool webp_available() { return false; }

std::string encode_webp(const uint8_t*, int64_t, int64_t, int) {
    throw Error("this igan was built without libwebp (apt install libwebp-dev, then rebuild)");
}

std::string encode_webp_rgba(const uint8_t*, int64_t, int64_t, int) {
    throw Error("this igan was built without libwebp (apt install libwebp-dev, then rebuild)");
}

RgbImage decode_webp(const std::string&, int64_t) {
    throw Error("this igan was built without libwebp (apt install libwebp-dev, then rebuild)");
}

#endif

}  // namespace igan
