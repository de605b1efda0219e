#pragma once
// PNG output streamed row by row (images larger than memory), and PNG/JPEG input for inversion
// and outpainting. libpng and libjpeg stay inside png.cpp.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace igan {

struct PngWriterState;  // libpng state, defined in png.cpp

// Images above this many pixels are refused unless the caller raises the limit: a small
// hostile file can otherwise declare gigabytes of pixels.
constexpr int64_t kDefaultMaxPixels = int64_t{1} << 28;

// zlib level of written PNGs: on rendered landscapes level 4 compresses 5x faster than libpng's
// default 6 for files 4% larger (25-MB 8192x1024 canvas: 0.6 s against 3.4 s). Rendering
// competes with the compression for the same cores, so speed wins.
constexpr int kPngCompressionLevel = 4;

// Writes an 8-bit RGB PNG into a temporary file beside `path` and renames it to `path` in
// finish(). Each write_rows call filters and compresses its rows on `threads` threads (0:
// png_threads()), in bands of at least 256 KiB. Destroyed without finish() (say, an exception mid-render), it removes the
// temporary file, so `path` never holds a partial image.
class PngWriter {
public:
    // Text chunks (iTXt, UTF-8 values; keys 1-79 printable ASCII) precede the image data.
    PngWriter(const std::string& path, int64_t width, int64_t height,
              std::vector<std::pair<std::string, std::string>> text_chunks,
              int compression_level = kPngCompressionLevel, int threads = 0);
    ~PngWriter();

    PngWriter(const PngWriter&) = delete;
    PngWriter& operator=(const PngWriter&) = delete;

    // `rgb` holds n_rows * width * 3 bytes, rows top to bottom.
    void write_rows(const uint8_t* rgb, int64_t n_rows);
    // Throws unless exactly `height` rows were written.
    void finish();

    int64_t rows_written() const;

private:
    std::unique_ptr<PngWriterState> state_;
};

struct Image {
    int64_t width = 0;
    int64_t height = 0;
    int64_t channels = 0;         // always 3 from read_image
    std::vector<uint8_t> pixels;  // row-major, interleaved
};

// Decodes PNG (any colour type and bit depth) or JPEG, chosen by the file's signature, into
// 8-bit RGB; alpha is dropped. Throws igan::Error naming the file when it is corrupt,
// truncated, unsupported or larger than `max_pixels`.
Image read_image(const std::string& path, int64_t max_pixels = kDefaultMaxPixels);
// The same from bytes in memory; `name` prefixes every error message.
Image decode_image(const std::string& bytes, const std::string& name,
                   int64_t max_pixels = kDefaultMaxPixels);

// The PNG's text chunks (tEXt, zTXt, iTXt) that precede the image data, where PngWriter puts
// them.
std::map<std::string, std::string> read_png_text(const std::string& path);

}  // namespace igan
