// The AVX2 row kernel of fill_normal_field: Philox4x32-10 on four columns at once (exact integer
// arithmetic, so the same bits as the scalar generator) and Box-Muller through glibc's libmvec.
// Built with -mavx2 -mfma and called only where the CPU has both; it includes nothing with
// inline functions, so no AVX2 copy of a shared inline function can reach the rest of the program.
#include "core/normal_kernels.h"

#if IGAN_NORMAL_AVX2
#include <immintrin.h>

extern "C" {
// libmvec's AVX2 variants (glibc >= 2.22), within 4 ulp of the exact result.
__m256d _ZGVdN4v_log(__m256d);
__m256d _ZGVdN4v_cos(__m256d);
__m256d _ZGVdN4v_sin(__m256d);
}

namespace igan::detail {

namespace {

// Exact for v < 2^52: v's bits in the mantissa of 2^52, minus 2^52.
inline __m256d u32_to_double(__m256i v) {
    const __m256i magic_bits = _mm256_set1_epi64x(0x4330000000000000ll);
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, magic_bits)),
                         _mm256_set1_pd(4503599627370496.0));
}

inline void store_lanes(float* dst, __m128 v, int lanes) {
    if (lanes == 4) {
        _mm_storeu_ps(dst, v);
        return;
    }
    alignas(16) float tmp[4];
    _mm_store_ps(tmp, v);
    for (int i = 0; i < lanes; ++i) dst[i] = tmp[i];
}

}  // namespace

void normal_row_avx2(const NormalRow& row) {
    const __m256i low32 = _mm256_set1_epi64x(0xffffffffll);
    const __m256i mul0 = _mm256_set1_epi64x(0xD2511F53ll), mul1 = _mm256_set1_epi64x(0xCD9E8D57ll);
    const __m256i iy_lo = _mm256_set1_epi64x(int64_t(row.iy & 0xffffffffu));
    const __m256i iy_hi = _mm256_set1_epi64x(int64_t(row.iy >> 32));
    const __m256d inv32 = _mm256_set1_pd(1.0 / 4294967296.0), half = _mm256_set1_pd(0.5);
    const __m256d minus_two = _mm256_set1_pd(-2.0), two_pi = _mm256_set1_pd(6.283185307179586);
    for (int64_t c = 0; c < row.cols; c += 4) {
        int64_t ix[4];
        for (int l = 0; l < 4; ++l) {
            ix[l] = row.ix0 + c + l;
            if (row.period_x > 0) ix[l] = wrap(ix[l], row.period_x);
        }
        const __m256i columns = _mm256_set_epi64x(ix[3], ix[2], ix[1], ix[0]);
        __m256i w0 = _mm256_and_si256(columns, low32);
        __m256i w1 = _mm256_srli_epi64(columns, 32);
        __m256i w2 = iy_lo, w3 = iy_hi;
        for (int round = 0; round < 10; ++round) {
            const __m256i p0 = _mm256_mul_epu32(w0, mul0);
            const __m256i p1 = _mm256_mul_epu32(w2, mul1);
            const __m256i k0 = _mm256_set1_epi64x(row.round_keys[round][0]);
            const __m256i k1 = _mm256_set1_epi64x(row.round_keys[round][1]);
            w0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), w1), k0);
            w1 = _mm256_and_si256(p1, low32);
            w2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), w3), k1);
            w3 = _mm256_and_si256(p0, low32);
        }
        const int lanes = row.cols - c < 4 ? int(row.cols - c) : 4;
        const __m256i words[4] = {w0, w1, w2, w3};
        for (int pair = 0; 2 * pair < row.used; ++pair) {
            const __m256d u1 = _mm256_mul_pd(_mm256_add_pd(u32_to_double(words[2 * pair]), half), inv32);
            const __m256d u2 = _mm256_mul_pd(u32_to_double(words[2 * pair + 1]), inv32);
            const __m256d r = _mm256_sqrt_pd(_mm256_mul_pd(minus_two, _ZGVdN4v_log(u1)));
            const __m256d theta = _mm256_mul_pd(two_pi, u2);
            store_lanes(row.out[2 * pair] + c,
                        _mm256_cvtpd_ps(_mm256_mul_pd(r, _ZGVdN4v_cos(theta))), lanes);
            if (2 * pair + 1 < row.used)
                store_lanes(row.out[2 * pair + 1] + c,
                            _mm256_cvtpd_ps(_mm256_mul_pd(r, _ZGVdN4v_sin(theta))), lanes);
        }
    }
}

}  // namespace igan::detail
#endif
