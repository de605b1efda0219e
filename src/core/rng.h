#pragma once
// Counter-based random fields: every value is a pure function of (seed, stream, channel, iy, ix),
// so any window of an endless canvas can be drawn alone, in any order, on any thread.
#include <array>
#include <cstdint>

namespace igan {

// Streams keep the fields independent; noise layer k uses kNoiseStreamBase + k.
enum : uint64_t {
    kGlobalLatentStream = 1,
    kLocalLatentStream = 2,
    kDataStream = 3,
    kTrainStream = 4,
    kNoiseStreamBase = 64,
};

// Philox4x32-10 (Salmon et al., SC'11): 128-bit counter, 64-bit key.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

uint64_t splitmix64(uint64_t x);

// The Philox key of a block of four channels (block = channel / 4) of a stream.
std::array<uint32_t, 2> stream_key(uint64_t seed, uint64_t stream, uint64_t block);

// Standard normals for channels [0, channels) of cells (iy0 + r, ix0 + c), r < rows, c < cols,
// written as out[(ch * rows + r) * cols + c]. Four channels share one Philox block.
// period_x > 0 wraps ix modulo period_x (cyclic canvases); 0 means unbounded.
// On x86-64 CPUs with AVX2 and FMA the logarithm and cosine come from glibc's libmvec (within
// 4 ulp in double precision, so about one float in 10^8 rounds the other way than with scalar
// libm); every cell still goes through the same kernel whatever the window, so fields stay
// window-independent.
void fill_normal_field(float* out, uint64_t seed, uint64_t stream, int64_t channels, int64_t iy0,
                       int64_t ix0, int64_t rows, int64_t cols, int64_t period_x = 0);
// The same draws through scalar libm, and whether fill_normal_field takes the vector kernel here.
void fill_normal_field_scalar(float* out, uint64_t seed, uint64_t stream, int64_t channels,
                              int64_t iy0, int64_t ix0, int64_t rows, int64_t cols,
                              int64_t period_x = 0);
bool normal_field_is_vectorised();

// Four uniforms in [0, 1) for counter (a, b) and block k of a stream: the scalar draws of
// training (crop positions, flips) keyed by step and sample.
std::array<double, 4> uniforms(uint64_t seed, uint64_t stream, int64_t a, int64_t b, uint64_t k);

// Floor division and modulo that behave for negative coordinates.
inline int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
inline int64_t floor_mod(int64_t a, int64_t b) { return a - floor_div(a, b) * b; }

}  // namespace igan
