#include "eval/bootstrap.h"

#include <cmath>
#include <map>
#include <random>

#include "core/error.h"
#include "core/rng.h"

namespace igan {

std::vector<Draw> bootstrap_draws(const Strata& strata, int64_t count, uint64_t seed) {
    const size_t n = strata.size();
    if (n == 0 || count < 0) throw Error("bootstrap: needs a non-empty set and count >= 0");
    std::map<int64_t, std::vector<int32_t>> members;
    for (size_t i = 0; i < n; ++i) members[strata[i]].push_back(int32_t(i));
    std::vector<Draw> draws(size_t(count + 1), Draw(n, 0));
    draws[0].assign(n, 1);
    for (int64_t d = 1; d <= count; ++d) {
        // Raw 64-bit draws reduced modulo the stratum's size: identical on every standard
        // library.
        std::mt19937_64 rng(splitmix64(seed ^ splitmix64(uint64_t(d))));
        for (size_t i = 0; i < n; ++i) {
            const auto& m = members[strata[i]];
            ++draws[size_t(d)][size_t(m[size_t(rng() % m.size())])];
        }
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

Estimate bootstrap(const SetMetric& metric, const Strata& real, const Strata& fake, int64_t draws,
                   uint64_t seed) {
    const auto values = metric(bootstrap_draws(real, draws, splitmix64(seed)),
                               bootstrap_draws(fake, draws, splitmix64(seed + 1)));
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
