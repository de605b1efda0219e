// Fields drawn with tensor operations (core/rng_tensor.h) against the scalar kernel of rng.h:
// Philox's words equal bit for bit, the normals within float rounding.
#include <gtest/gtest.h>

#include "common/test_util.h"
#include "core/rng.h"
#include "core/rng_tensor.h"

namespace igan {
namespace {

TEST(RngTensor, PhiloxWordsEqualTheScalarOnes) {
    // Counters with every bit pattern class: zero, small, the top bit set, all ones.
    std::vector<std::array<uint32_t, 4>> counters = {
        {0, 0, 0, 0},
        {1, 2, 3, 4},
        {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
        {0x80000000u, 0x7fffffffu, 0xdeadbeefu, 0x12345678u}};
    uint64_t x = 42;
    for (int i = 0; i < 60; ++i) {
        x = splitmix64(x);
        const uint64_t y = splitmix64(x);
        counters.push_back({uint32_t(x), uint32_t(x >> 32), uint32_t(y), uint32_t(y >> 32)});
    }
    for (const std::array<uint32_t, 2> key :
         {std::array<uint32_t, 2>{0, 0}, std::array<uint32_t, 2>{0xffffffffu, 0x9e3779b9u}}) {
        std::array<torch::Tensor, 4> c;
        for (int w = 0; w < 4; ++w) {
            std::vector<int64_t> v;
            for (const auto& ctr : counters) v.push_back(int64_t(ctr[size_t(w)]));
            c[size_t(w)] = torch::tensor(v, torch::kInt64);
        }
        const auto words = philox4x32(c, key);
        for (size_t i = 0; i < counters.size(); ++i) {
            const auto expected = philox4x32(counters[i], key);
            for (int w = 0; w < 4; ++w)
                ASSERT_EQ(words[size_t(w)][int64_t(i)].item<int64_t>(),
                          int64_t(expected[size_t(w)]))
                    << "counter " << i << " word " << w;
        }
    }
}

// Windows with negative and 64-bit coordinates, a cyclic period, 1, 4 and 6 channels.
TEST(RngTensor, NormalFieldsEqualTheScalarKernel) {
    struct Case {
        int64_t channels, iy0, ix0, rows, cols, period;
    };
    for (const Case k : {Case{1, -5, -7, 9, 11, 0}, Case{4, 3, -20, 5, 8, 6},
                         Case{6, int64_t(1) << 40, -(int64_t(1) << 35), 4, 7, 0}}) {
        const std::vector<int64_t> iy0 = {k.iy0, k.iy0 + 13}, ix0 = {k.ix0, k.ix0 - 2};
        const auto fields = normal_fields(torch::kCPU, 9, kNoiseStreamBase + 1, k.channels, iy0,
                                          ix0, k.rows, k.cols, k.period);
        ASSERT_EQ(fields.sizes(), (std::vector<int64_t>{2, k.channels, k.rows, k.cols}));
        for (size_t i = 0; i < iy0.size(); ++i) {
            auto expected = torch::empty({k.channels, k.rows, k.cols});
            fill_normal_field_scalar(expected.data_ptr<float>(), 9, kNoiseStreamBase + 1,
                                     k.channels, iy0[i], ix0[i], k.rows, k.cols, k.period);
            EXPECT_TRUE(test::all_close(fields[int64_t(i)], expected, 1e-6)) << "window " << i;
        }
    }
}

}  // namespace
}  // namespace igan
