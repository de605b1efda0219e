#pragma once
// 8-bit RGB images in memory: PNG encoding and decoding of small images (tiles, /render
// responses, tests). Large images stream through Engine::generate or igan export instead.
#include <cstdint>
#include <string>
#include <vector>

namespace igan {

// Interleaved rows of width * 3 bytes, top to bottom.
struct RgbImage {
    int64_t width = 0, height = 0;
    std::vector<uint8_t> pixels;
};

// Threads that compress a written PNG unless the caller says otherwise; set_threads sets it to
// its own count. 1 until then.
void set_png_threads(int threads);
int png_threads();

// An 8-bit RGB PNG of `rgb` (height rows of 3 * width bytes), compressed on `threads` threads
// at the level of every PNG igan writes; throws igan::Error.
std::string encode_png(const uint8_t* rgb, int64_t width, int64_t height, int threads = 1);
// Any PNG to 8-bit RGB (alpha dropped); throws igan::Error when the data is not a valid PNG or
// holds more than max_pixels pixels.
RgbImage decode_png(const std::string& data, int64_t max_pixels = int64_t{1} << 26);

// WebP through libwebp, an optional dependency: false when igan was built without it, and the
// two functions below then throw igan::Error.
bool webp_available();
constexpr int kWebpLossless = -1;  // the quality argument for lossless WebP
// A WebP of `rgb`: lossless for quality < 0, else lossy at quality 1..100; throws igan::Error.
std::string encode_webp(const uint8_t* rgb, int64_t width, int64_t height, int quality);
// The same from RGBA pixels (straight alpha), keeping the alpha channel.
std::string encode_webp_rgba(const uint8_t* rgba, int64_t width, int64_t height, int quality);
// Any WebP to 8-bit RGB; throws igan::Error when the data is not a valid WebP or holds more than
// max_pixels pixels.
RgbImage decode_webp(const std::string& data, int64_t max_pixels = int64_t{1} << 26);

}  // namespace igan
