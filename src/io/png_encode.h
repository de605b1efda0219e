#pragma once
// PNG encoding shared by the streaming writer (png.cpp) and encode_png (png_memory.cpp): the
// chunks written directly, the image data compressed by several threads. Each thread filters
// and deflates one band of rows; a band ends on a sync flush (byte-aligned), starts with the
// previous band's last 32 KiB as its dictionary, and the bands' Adler-32 sums are combined, so
// the bands join into the one zlib stream PNG requires (as pigz does).
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace igan {

// The signature, IHDR (8-bit RGB, not interlaced) and one uncompressed iTXt chunk per entry.
// Keys and values are not checked here.
std::string png_head(int64_t width, int64_t height,
                     const std::vector<std::pair<std::string, std::string>>& text_chunks);
// The IEND chunk.
std::string png_tail();

// The IDAT chunks of one image, fed rows top to bottom in any grouping.
class PngImageEncoder {
public:
    PngImageEncoder(int64_t width, int64_t height, int level, int threads);

    // Appends to `out` the IDAT chunks holding the compressed data of the next `n_rows` rows
    // (`rgb`: n_rows * width * 3 bytes). After the image's last row the zlib stream is complete.
    void add_rows(const uint8_t* rgb, int64_t n_rows, std::string* out);

private:
    int64_t width_, height_;
    int level_, threads_;
    int64_t rows_ = 0;
    uint32_t adler_ = 1;                 // of the filtered bytes so far
    std::vector<uint8_t> previous_row_;  // unfiltered, for the next row's filter
    std::vector<uint8_t> window_;        // the last <= 32 KiB of filtered bytes compressed
    std::vector<uint8_t> pending_;       // filtered rows short of a whole band
    std::string compressed_;             // zlib data short of a whole IDAT chunk
};

}  // namespace igan
