#pragma once
// Prometheus counters of the tile server: requests by route and status, a latency histogram,
// tile sources (cache, shared render, own render), the generator's work per level and a
// tiles-per-second rate over 10 s.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace igan {

class Metrics {
public:
    Metrics();
    void request(const std::string& route, int status, double seconds);
    void tile(bool cache_hit);  // a tile answered with 200
    // A render by the generator: its level (0 native, < 0 a partial ToRGB sum) and pixels.
    void rendered(double seconds, int level = 0, int64_t pixels = 0);
    void composed();  // a coarser tile box-filtered from its four children
    void preview();   // a coarse student's tile sent while the exact one is made
    void rejected();  // 503: queue full

    // Counter and histogram lines; `extra` (already formatted lines) is appended.
    std::string text(const std::string& extra) const;
    int64_t tiles_served() const;
    double tiles_per_second() const;  // over the last 10 whole seconds

    static constexpr std::array<double, 14> kBuckets = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

private:
    int64_t now_s() const;
    void advance_locked(int64_t second) const;

    const std::chrono::steady_clock::time_point start_;
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, int64_t> requests_;
    std::array<int64_t, kBuckets.size() + 1> histogram_{};  // last: +Inf
    double latency_sum_ = 0;
    int64_t latency_count_ = 0;
    int64_t tiles_ = 0, hits_ = 0, misses_ = 0, renders_ = 0, rejected_ = 0;
    double render_seconds_ = 0;
    int64_t composed_ = 0, previews_ = 0;
    std::map<int, std::pair<int64_t, int64_t>> levels_;  // level -> (renders, pixels)
    // tiles per whole second, ring of 11 (the current second is excluded from the rate)
    mutable std::array<int64_t, 11> ring_{};
    mutable int64_t ring_second_ = 0;
};

}  // namespace igan
