// Latent fields: a pure function of (seed, stream, channel, iy, ix) with the statistics of
// i.i.d. standard normals.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/rng.h"

namespace igan {
namespace {

std::vector<float> field(uint64_t seed, uint64_t stream, int64_t ch, int64_t y, int64_t x,
                         int64_t h, int64_t w, int64_t period = 0) {
    std::vector<float> v(size_t(ch * h * w));
    fill_normal_field(v.data(), seed, stream, ch, y, x, h, w, period);
    return v;
}

TEST(Philox, KnownAnswers) {
    // Random123 known-answer vectors for philox4x32-10.
    auto zero = philox4x32({0, 0, 0, 0}, {0, 0});
    EXPECT_EQ(zero[0], 0x6627e8d5u);
    EXPECT_EQ(zero[1], 0xe169c58du);
    EXPECT_EQ(zero[2], 0xbc57ac4cu);
    EXPECT_EQ(zero[3], 0x9b00dbd8u);
    auto ones = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                           {0xffffffffu, 0xffffffffu});
    EXPECT_EQ(ones[0], 0x408f276du);
    EXPECT_EQ(ones[1], 0x41c83b0eu);
    EXPECT_EQ(ones[2], 0xa20bc7c6u);
    EXPECT_EQ(ones[3], 0x6d5451fdu);
}

TEST(Field, ReproducibleAndWindowIndependent) {
    for (int64_t origin : {int64_t(0), int64_t(-37), int64_t(1) << 40, -(int64_t(1) << 40)}) {
        const auto big = field(5, kLocalLatentStream, 7, origin, origin - 3, 9, 11);
        EXPECT_EQ(big, field(5, kLocalLatentStream, 7, origin, origin - 3, 9, 11));
        const auto small = field(5, kLocalLatentStream, 7, origin + 2, origin, 4, 5);
        for (int64_t c = 0; c < 7; ++c)
            for (int64_t r = 0; r < 4; ++r)
                for (int64_t col = 0; col < 5; ++col)
                    ASSERT_EQ(small[(c * 4 + r) * 5 + col], big[(c * 9 + r + 2) * 11 + col + 3])
                        << "origin " << origin;
    }
}

TEST(Field, CyclicWrapIsExact) {
    const auto a = field(3, kNoiseStreamBase, 1, 0, 0, 2, 40, 16);
    for (int64_t r = 0; r < 2; ++r)
        for (int64_t c = 0; c + 16 < 40; ++c) EXPECT_EQ(a[r * 40 + c], a[r * 40 + c + 16]);
}

// The vector kernel (libmvec's log/cos/sin, within 4 ulp in double) against scalar libm: the
// Philox bits are exact, so a float may differ only where rounding to float is a near tie.
TEST(Field, VectorKernelAgreesWithScalarLibm) {
    if (!normal_field_is_vectorised()) GTEST_SKIP() << "no AVX2 kernel on this CPU or build";
    for (int64_t channels : {int64_t(1), int64_t(7)})
        for (int64_t period : {int64_t(0), int64_t(93)}) {
            const int64_t h = 64, w = 1021;  // odd width: every tail length of the 4-lane kernel
            std::vector<float> vec(size_t(channels * h * w)), ref(vec.size());
            fill_normal_field(vec.data(), 21, kNoiseStreamBase, channels, -7, -500, h, w, period);
            fill_normal_field_scalar(ref.data(), 21, kNoiseStreamBase, channels, -7, -500, h, w,
                                     period);
            int64_t differing = 0;
            for (size_t i = 0; i < vec.size(); ++i) {
                if (vec[i] == ref[i]) continue;
                ++differing;
                ASSERT_LE(std::abs(vec[i] - ref[i]), 2e-7f * std::max(1.0f, std::abs(ref[i])))
                    << "index " << i;
            }
            EXPECT_LE(differing, int64_t(vec.size()) / 100000) << channels << " channels";
        }
}

struct Moments {
    double mean = 0, var = 0, skew = 0, kurt = 0;
};

Moments moments(const std::vector<float>& v) {
    Moments m;
    for (float x : v) m.mean += x;
    m.mean /= v.size();
    for (float x : v) {
        const double d = x - m.mean;
        m.var += d * d;
        m.skew += d * d * d;
        m.kurt += d * d * d * d;
    }
    m.var /= v.size();
    m.skew /= v.size() * std::pow(m.var, 1.5);
    m.kurt /= v.size() * m.var * m.var;
    return m;
}

double correlation(const std::vector<float>& a, const std::vector<float>& b) {
    double sab = 0, sa = 0, sb = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        sab += a[i] * b[i];
        sa += a[i];
        sb += b[i];
        saa += a[i] * a[i];
        sbb += b[i] * b[i];
    }
    const double n = a.size();
    return (sab / n - sa / n * sb / n) /
           std::sqrt((saa / n - sa * sa / n / n) * (sbb / n - sb * sb / n / n));
}

// N = 2^18 samples: standard errors 0.002 (mean), 0.0028 (var), 0.0048 (skew), 0.0096 (kurt);
// the bounds are ~5 standard errors, so a correct generator fails with negligible probability.
TEST(Field, MomentsOfAStandardNormal) {
    const auto v = field(11, kLocalLatentStream, 4, -256, 1000, 256, 256);
    const auto m = moments(v);
    EXPECT_NEAR(m.mean, 0.0, 0.01);
    EXPECT_NEAR(m.var, 1.0, 0.015);
    EXPECT_NEAR(m.skew, 0.0, 0.025);
    EXPECT_NEAR(m.kurt, 3.0, 0.05);
}

// Kolmogorov-Smirnov against the normal CDF; the 0.1% critical value is 1.95 / sqrt(N).
TEST(Field, KolmogorovSmirnovNormality) {
    auto v = field(12, kNoiseStreamBase + 3, 1, 0, 0, 128, 256);
    std::sort(v.begin(), v.end());
    double d = 0;
    const double n = v.size();
    for (size_t i = 0; i < v.size(); ++i) {
        const double cdf = 0.5 * std::erfc(-v[i] / std::sqrt(2.0));
        d = std::max({d, std::abs(cdf - i / n), std::abs(cdf - (i + 1) / n)});
    }
    EXPECT_LT(d, 1.95 / std::sqrt(n));
}

// No correlation between horizontal/vertical neighbours, channels, streams and seeds:
// |r| < 5 / sqrt(N) for N = 65536 pairs.
TEST(Field, NoCorrelationBetweenNeighboursChannelsStreamsSeeds) {
    const int64_t h = 256, w = 257;
    const auto v = field(13, kLocalLatentStream, 8, 0, 0, h, w);
    auto plane = [&](int64_t c, int64_t dy, int64_t dx) {
        std::vector<float> p;
        for (int64_t r = 0; r < h - 1; ++r)
            for (int64_t col = 0; col < w - 1; ++col)
                p.push_back(v[(c * h + r + dy) * w + col + dx]);
        return p;
    };
    const double bound = 5.0 / std::sqrt(double((h - 1) * (w - 1)));
    EXPECT_LT(std::abs(correlation(plane(0, 0, 0), plane(0, 0, 1))), bound) << "horizontal";
    EXPECT_LT(std::abs(correlation(plane(0, 0, 0), plane(0, 1, 0))), bound) << "vertical";
    EXPECT_LT(std::abs(correlation(plane(0, 0, 0), plane(1, 0, 0))), bound) << "channel 0/1";
    EXPECT_LT(std::abs(correlation(plane(3, 0, 0), plane(4, 0, 0))), bound) << "channel 3/4";
    const auto other_stream = field(13, kNoiseStreamBase, 1, 0, 0, h, w);
    const auto other_seed = field(14, kLocalLatentStream, 1, 0, 0, h, w);
    std::vector<float> first(v.begin(), v.begin() + h * w);
    EXPECT_LT(std::abs(correlation(first, other_stream)), 5.0 / std::sqrt(double(h * w)));
    EXPECT_LT(std::abs(correlation(first, other_seed)), 5.0 / std::sqrt(double(h * w)));
}

TEST(FloorDiv, NegativeNumbers) {
    EXPECT_EQ(floor_div(-1, 16), -1);
    EXPECT_EQ(floor_div(-16, 16), -1);
    EXPECT_EQ(floor_div(-17, 16), -2);
    EXPECT_EQ(floor_mod(-1, 16), 15);
    EXPECT_EQ(floor_div(int64_t(1) << 40, 16), int64_t(1) << 36);
}

}  // namespace
}  // namespace igan
