#pragma once
// Bootstrap spread of a set-vs-set metric (Efron 1979): draw each set again with replacement,
// recompute the metric, and take the standard deviation over draws. It estimates how much the
// number moves with another sample of crops and seeds, so a draw resamples the way the set was
// sampled: within strata. K random crops of each photo are one stratum per photo (another
// sample seed gives other crops, never another share of the photos); generated samples of
// independent seeds are one stratum. The reported value is the metric on the full sets: a draw
// repeats about a third of its samples, which biases distances upwards, so the mean over draws
// is not used.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace igan {

// A draw of a set of n samples: how many times each sample is taken (the counts sum to n).
using Draw = std::vector<int32_t>;

// The strata of a set: strata[i] is the stratum of sample i (any integers).
using Strata = std::vector<int64_t>;

// `count` + 1 draws of a set: draws[0] is the set itself (all ones); in the others every stratum
// of m samples is m picks with replacement among its own samples. A pure function of
// (strata, seed).
std::vector<Draw> bootstrap_draws(const Strata& strata, int64_t count, uint64_t seed);

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
Estimate bootstrap(const SetMetric& metric, const Strata& real, const Strata& fake, int64_t draws,
                   uint64_t seed);

}  // namespace igan
