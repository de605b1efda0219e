// The parallel PNG encoder (src/io/png_encode.cpp): streams compressed in bands by several
// threads must decode, through libpng and through zlib, to exactly what one thread writes.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "igan/image.h"
#include "io/png.h"
#include "io/png_encode.h"

namespace igan {
namespace {

// Smooth colour fields with mild noise, like a render: every filter type wins somewhere.
std::vector<uint8_t> render_like(int64_t width, int64_t height) {
    std::vector<uint8_t> rgb(size_t(width * height * 3));
    uint32_t noise = 1;
    for (int64_t y = 0; y < height; ++y)
        for (int64_t x = 0; x < width; ++x)
            for (int c = 0; c < 3; ++c) {
                noise = noise * 1664525u + 1013904223u;
                const double v = 120 + 80 * std::sin(0.013 * x * (c + 1) + 0.021 * y) +
                                 30 * std::cos(0.002 * x * y / (c + 3)) + (noise >> 29);
                rgb[size_t((y * width + x) * 3 + c)] = uint8_t(std::clamp(v, 0.0, 255.0));
            }
    return rgb;
}

// The zlib stream of a PNG's IDAT chunks, inflated (zlib checks the Adler-32 at its end).
std::string inflate_idat(const std::string& png) {
    std::string stream;
    for (size_t at = 8; at + 12 <= png.size();) {
        const uint32_t length = uint32_t(uint8_t(png[at])) << 24 |
                                uint32_t(uint8_t(png[at + 1])) << 16 |
                                uint32_t(uint8_t(png[at + 2])) << 8 | uint8_t(png[at + 3]);
        if (png.compare(at + 4, 4, "IDAT") == 0) stream += png.substr(at + 8, length);
        at += 12 + length;
    }
    z_stream zs{};
    EXPECT_EQ(inflateInit(&zs), Z_OK);
    std::string out(1 << 20, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(stream.data());
    zs.avail_in = uInt(stream.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (zs.total_out == out.size()) out.resize(out.size() * 2);
        zs.next_out = reinterpret_cast<Bytef*>(out.data()) + zs.total_out;
        zs.avail_out = uInt(out.size() - zs.total_out);
        rc = inflate(&zs, Z_NO_FLUSH);
    }
    EXPECT_EQ(rc, Z_STREAM_END) << (zs.msg ? zs.msg : "");
    EXPECT_EQ(zs.avail_in, 0u) << "bytes after the zlib stream";
    out.resize(zs.total_out);
    inflateEnd(&zs);
    return out;
}

// Noise rows that repeat every 8 rows: only matches reaching back into the previous band make
// a band's first rows cheap, so this image shows whether each band got its dictionary.
std::vector<uint8_t> periodic_noise(int64_t width, int64_t height) {
    std::vector<uint8_t> rgb(size_t(width * height * 3));
    uint32_t noise = 7;
    const size_t period = size_t(8 * width * 3);
    for (size_t i = 0; i < rgb.size(); ++i) {
        noise = noise * 1664525u + 1013904223u;
        rgb[i] = i < period ? uint8_t(noise >> 24) : rgb[i - period];
    }
    return rgb;
}

// 512 x 700: about 1 MB of filtered data, five 256 KiB bands for 1, 2 or 4 threads.
TEST(PngEncode, ThreadsChangeNotOneByte) {
    const int64_t w = 512, h = 700;
    for (const auto& rgb : {render_like(w, h), periodic_noise(w, h)}) {
        const std::string one = encode_png(rgb.data(), w, h, 1);
        const std::string inflated = inflate_idat(one);
        ASSERT_EQ(inflated.size(), size_t(h * (3 * w + 1)));
        EXPECT_EQ(decode_png(one).pixels, rgb);
        for (int threads : {2, 4}) {
            SCOPED_TRACE(threads);
            const std::string many = encode_png(rgb.data(), w, h, threads);
            // Bands sit at fixed rows: threads change who compresses them, not one byte.
            EXPECT_EQ(many, one);
            EXPECT_EQ(inflate_idat(many), inflated);  // the same filtered rows, a valid Adler-32
            EXPECT_EQ(decode_png(many).pixels, rgb);  // libpng reads it
        }
    }
}

// The streaming writer, fed in uneven groups of rows on several threads, writes what libpng
// reads back pixel for pixel, and its filtered rows equal encode_png's.
TEST(PngEncode, StreamedGroupsEqualOneCall) {
    const int64_t w = 640, h = 901;
    const auto rgb = render_like(w, h);
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("igan_png_encode_" + std::to_string(getpid()) + ".png"))
                                 .string();
    {
        PngWriter writer(path, w, h, {{"k", "v"}}, kPngCompressionLevel, 3);
        int64_t y = 0;
        for (int64_t rows : {1, 500, 7, 393}) {
            writer.write_rows(rgb.data() + y * w * 3, rows);
            y += rows;
        }
        writer.finish();
    }
    const Image image = read_image(path);
    EXPECT_EQ(image.pixels, rgb);
    EXPECT_EQ(read_png_text(path).at("k"), "v");
    FILE* f = std::fopen(path.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    std::string bytes(size_t(std::filesystem::file_size(path)), '\0');
    ASSERT_EQ(std::fread(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
    std::filesystem::remove(path);
    EXPECT_EQ(inflate_idat(bytes), inflate_idat(encode_png(rgb.data(), w, h, 1)));
}

// Widths below and at one pixel's bytes, and one row: the edges of every filter.
TEST(PngEncode, SmallImagesRoundTrip) {
    for (auto [w, h] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 5}, {2, 1}, {5, 3}}) {
        SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h));
        const auto rgb = render_like(w, h);
        EXPECT_EQ(decode_png(encode_png(rgb.data(), w, h, 4)).pixels, rgb);
    }
    EXPECT_THROW(encode_png(nullptr, 0, 1), Error);
}

}  // namespace
}  // namespace igan
