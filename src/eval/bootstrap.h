#pragma once
// Bootstrap spread of a set-vs-set metric (Efron 1979): draw each set again, n samples with
// replacement out of its n, recompute the metric, and take the standard deviation over draws.
// It estimates how much the number would move with another sample of crops and seeds. The
// reported value is the metric on the full sets: a draw repeats about a third of its samples,
// which biases distances upwards, so the mean over draws is not used.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace igan {

// A draw of a set of n samples: how many times each sample is taken (the counts sum to n).
using Draw = std::vector<int32_t>;

// `count` + 1 draws of a set of n: draws[0] is the set itself (all ones), the others are random,
// a pure function of (n, seed).
std::vector<Draw> bootstrap_draws(int64_t n, int64_t count, uint64_t seed);

// The indices of a draw, sample i repeated counts[i] times: (n,) int64, to gather rows.
torch::Tensor draw_indices(const Draw& draw);

// A metric over paired draws of the real and fake sets: values[i] for (real[i], fake[i]).
// Metrics that can share work between draws (SWD sorts once) implement this directly.
using SetMetric = std::function<std::vector<double>(const std::vector<Draw>& real,
                                                    const std::vector<Draw>& fake)>;
// The others look at one pair of draws at a time.
SetMetric per_draw(std::function<double(const Draw& real, const Draw& fake)> metric);

struct Estimate {
    double value = 0;  // on the full sets
    double std = 0;    // over the bootstrap draws (0 without draws)
    int64_t draws = 0;
};

// The real and fake sets are drawn independently, from seeds derived from `seed`.
Estimate bootstrap(const SetMetric& metric, int64_t n_real, int64_t n_fake, int64_t draws,
                   uint64_t seed);

}  // namespace igan
