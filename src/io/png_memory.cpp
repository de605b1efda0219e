// In-memory PNG: encoded as the streaming writer does, decoded through libpng's simplified API
// (no setjmp in our code).
#include <png.h>

#include <cstring>

#include "core/error.h"
#include "igan/image.h"
#include "io/png.h"
#include "io/png_encode.h"

namespace igan {

std::string encode_png(const uint8_t* rgb, int64_t width, int64_t height, int threads) {
    if (width <= 0 || height <= 0 || width > 0x7fffffff || height > 0x7fffffff)
        throw Error("encode_png: bad size " + std::to_string(width) + "x" + std::to_string(height));
    std::string out = png_head(width, height, {});
    PngImageEncoder(width, height, kPngCompressionLevel, threads).add_rows(rgb, height, &out);
    return out + png_tail();
}

RgbImage decode_png(const std::string& data, int64_t max_pixels) {
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&image, data.data(), data.size()))
        throw Error(std::string("decode_png: ") + image.message);
    if (int64_t(image.width) * int64_t(image.height) > max_pixels) {
        png_image_free(&image);
        throw Error("decode_png: image too large");
    }
    image.format = PNG_FORMAT_RGB;
    RgbImage out;
    out.width = image.width;
    out.height = image.height;
    out.pixels.resize(size_t(PNG_IMAGE_SIZE(image)));
    if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr))
        throw Error(std::string("decode_png: ") + image.message);
    return out;
}

}  // namespace igan
