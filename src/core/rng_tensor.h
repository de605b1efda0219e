#pragma once
// The counter-based fields of rng.h drawn with tensor operations, on the device where the
// network runs: a window of the canvas needs no host computation and no copy to the device.
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

namespace igan {

// Philox4x32-10 on int64 tensors holding 32-bit words (any shape, broadcast together): the words
// philox4x32 returns, bit for bit, on any device. The products are split into 16-bit halves, so
// no intermediate leaves int64's range.
std::array<torch::Tensor, 4> philox4x32(std::array<torch::Tensor, 4> counter,
                                        std::array<uint32_t, 2> key);

// fill_normal_field for a batch of windows on `device`: (origins, channels, rows, cols) float32,
// window i starting at cell (iy0[i], ix0[i]). Philox's words are the scalar kernel's; Box-Muller
// runs in double with the device's log, sqrt and cos, within an ulp or so of libm's, so about
// one float in 10^8 rounds the other way.
torch::Tensor normal_fields(torch::Device device, uint64_t seed, uint64_t stream, int64_t channels,
                            const std::vector<int64_t>& iy0, const std::vector<int64_t>& ix0,
                            int64_t rows, int64_t cols, int64_t period_x = 0);

}  // namespace igan
