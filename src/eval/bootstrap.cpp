#include "eval/bootstrap.h"

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/rng.h"

namespace igan {

std::vector<Draw> bootstrap_draws(int64_t n, int64_t count, uint64_t seed) {
    if (n < 1 || count < 0) throw Error("bootstrap: needs n >= 1 and count >= 0");
    std::vector<Draw> draws(size_t(count + 1), Draw(size_t(n), 0));
    draws[0].assign(size_t(n), 1);
    for (int64_t d = 1; d <= count; ++d) {
        // Raw 64-bit draws reduced modulo n: identical on every standard library.
        std::mt19937_64 rng(splitmix64(seed ^ splitmix64(uint64_t(d))));
        for (int64_t i = 0; i < n; ++i) ++draws[size_t(d)][size_t(rng() % uint64_t(n))];
    }
    return draws;
}

torch::Tensor draw_indices(const Draw& draw) {
    std::vector<int64_t> idx;
    for (size_t i = 0; i < draw.size(); ++i)
        for (int32_t k = 0; k < draw[i]; ++k) idx.push_back(int64_t(i));
    return torch::tensor(idx, torch::kLong);
}

SetMetric per_draw(std::function<double(const Draw& real, const Draw& fake)> metric) {
    return
        [metric = std::move(metric)](const std::vector<Draw>& real, const std::vector<Draw>& fake) {
            std::vector<double> values;
            for (size_t i = 0; i < real.size(); ++i) values.push_back(metric(real[i], fake[i]));
            return values;
        };
}

Estimate bootstrap(const SetMetric& metric, int64_t n_real, int64_t n_fake, int64_t draws,
                   uint64_t seed) {
    const auto values = metric(bootstrap_draws(n_real, draws, splitmix64(seed)),
                               bootstrap_draws(n_fake, draws, splitmix64(seed + 1)));
    if (int64_t(values.size()) != draws + 1)
        throw Error("bootstrap: the metric returned " + std::to_string(values.size()) +
                    " values for " + std::to_string(draws + 1) + " draws");
    Estimate e;
    e.value = values[0];
    e.draws = draws;
    if (draws < 2) return e;
    double mean = 0, sq = 0;
    for (int64_t d = 1; d <= draws; ++d) mean += values[size_t(d)] / double(draws);
    for (int64_t d = 1; d <= draws; ++d) sq += std::pow(values[size_t(d)] - mean, 2);
    e.std = std::sqrt(sq / double(draws - 1));
    return e;
}

}  // namespace igan
