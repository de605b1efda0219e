// In-memory PNG through libpng's simplified API (no setjmp in our code, no text chunks).
#include <png.h>

#include <cstring>

#include "core/error.h"
#include "igan/image.h"

namespace igan {

std::string encode_png(const uint8_t* rgb, int64_t width, int64_t height) {
    if (width <= 0 || height <= 0 || width > 0x7fffffff || height > 0x7fffffff)
        throw Error("encode_png: bad size " + std::to_string(width) + "x" + std::to_string(height));
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = png_uint_32(width);
    image.height = png_uint_32(height);
    image.format = PNG_FORMAT_RGB;
    // One pass into a buffer of the worst-case size: asking libpng for the size first would
    // compress the image twice.
    std::string out(PNG_IMAGE_PNG_SIZE_MAX(image), '\0');
    png_alloc_size_t size = out.size();
    if (!png_image_write_to_memory(&image, out.data(), &size, 0, rgb, 0, nullptr))
        throw Error(std::string("encode_png: ") + image.message);
    out.resize(size);
    return out;
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
