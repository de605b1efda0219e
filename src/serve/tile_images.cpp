#include "serve/tile_images.h"

#include <algorithm>
#include <cmath>

namespace igan {

void box_into_quadrant(const uint8_t* in, int64_t size, int qx, int qy, uint8_t* out) {
    const int64_t half = size / 2;
    for (int64_t j = 0; j < half; ++j) {
        const uint8_t* r0 = in + (2 * j) * size * 3;
        const uint8_t* r1 = r0 + size * 3;
        uint8_t* o = out + ((qy * half + j) * size + qx * half) * 3;
        for (int64_t i = 0; i < half; ++i)
            for (int c = 0; c < 3; ++c) {
                const int s = r0[6 * i + c] + r0[6 * i + 3 + c] + r1[6 * i + c] + r1[6 * i + 3 + c];
                o[3 * i + c] = uint8_t((s + 2) / 4);
            }
    }
}

void copy_into_quadrant(const uint8_t* in, int64_t size, int qx, int qy, uint8_t* out) {
    const int64_t row = 3 * size;
    for (int64_t j = 0; j < size; ++j) {
        const uint8_t* src = in + j * row;
        std::copy(src, src + row, out + ((qy * size + j) * 2 * size + qx * size) * 3);
    }
}

std::string box_filter(const uint8_t* rgb, int64_t side, int64_t factor) {
    const int64_t out_side = side / factor, n = factor * factor;
    std::string out(size_t(3 * out_side * out_side), '\0');
    for (int64_t y = 0; y < out_side; ++y)
        for (int64_t x = 0; x < out_side; ++x)
            for (int c = 0; c < 3; ++c) {
                int64_t sum = 0;
                for (int64_t j = 0; j < factor; ++j)
                    for (int64_t i = 0; i < factor; ++i)
                        sum += rgb[((y * factor + j) * side + x * factor + i) * 3 + c];
                out[size_t((y * out_side + x) * 3 + c)] = char(uint8_t((sum + n / 2) / n));
            }
    return out;
}

std::string pixel_double(const uint8_t* rgb, int64_t size) {
    std::string out(size_t(12 * size * size), '\0');
    for (int64_t y = 0; y < 2 * size; ++y)
        for (int64_t x = 0; x < 2 * size; ++x)
            for (int c = 0; c < 3; ++c)
                out[size_t((y * 2 * size + x) * 3 + c)] = char(rgb[((y / 2) * size + x / 2) * 3 + c]);
    return out;
}

double psnr(const uint8_t* a, const uint8_t* b, int64_t n) {
    double se = 0;
    for (int64_t i = 0; i < n; ++i) se += double(int(a[i]) - int(b[i])) * double(int(a[i]) - int(b[i]));
    if (se == 0) return 99.0;
    return 10 * std::log10(255.0 * 255.0 * double(n) / se);
}

}  // namespace igan
