#pragma once
// Pixel operations of the tile pyramid on interleaved 8-bit RGB (3 bytes a pixel, rows top to
// bottom): a coarser tile from its four children, @2x tiles, and the faithfulness measure that
// decides how zoomed-out levels are made.
#include <cstdint>
#include <string>

namespace igan {

// 2x2 box filter (rounded) of a size x size child into quadrant (qx, qy) of a size x size tile.
void box_into_quadrant(const uint8_t* child, int64_t size, int qx, int qy, uint8_t* out);
// A size x size child copied into quadrant (qx, qy) of a 2size x 2size tile.
void copy_into_quadrant(const uint8_t* child, int64_t size, int qx, int qy, uint8_t* out);
// side x side -> side/factor x side/factor, each pixel the rounded mean of its block.
std::string box_filter(const uint8_t* rgb, int64_t side, int64_t factor);
// Each pixel repeated 2x2: size x size -> 2size x 2size.
std::string pixel_double(const uint8_t* rgb, int64_t size);
// PSNR in dB of two 8-bit buffers of n bytes (99 when equal).
double psnr(const uint8_t* a, const uint8_t* b, int64_t n);

}  // namespace igan
