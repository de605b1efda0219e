#pragma once
// The row kernels behind fill_normal_field (rng.cpp). Only <cstdint> here: normal_avx2.cpp is
// built with AVX2 enabled and must not compile copies of shared inline functions.
#include <cstdint>

namespace igan::detail {

// One row of one group of four channels: out[j][c] for columns c < cols, channels j < used.
struct NormalRow {
    float* out[4];
    int used;
    uint64_t iy;
    int64_t ix0, cols, period_x;
    uint32_t round_keys[10][2];  // the Philox key before each round
};

static inline int64_t wrap(int64_t a, int64_t period) {
    const int64_t m = a % period;
    return m < 0 ? m + period : m;
}

#if IGAN_NORMAL_AVX2
void normal_row_avx2(const NormalRow& row);
#endif

}  // namespace igan::detail
