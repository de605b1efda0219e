#include "serve/metrics.h"

#include <cstdio>
#include <sstream>

namespace igan {

Metrics::Metrics() : start_(std::chrono::steady_clock::now()) {}

int64_t Metrics::now_s() const {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                            start_)
        .count();
}

void Metrics::advance_locked(int64_t second) const {
    if (second - ring_second_ >= int64_t(ring_.size())) {
        ring_.fill(0);
    } else {
        for (int64_t s = ring_second_ + 1; s <= second; ++s) ring_[size_t(s % ring_.size())] = 0;
    }
    if (second > ring_second_) ring_second_ = second;
}

void Metrics::request(const std::string& route, int status, double seconds) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++requests_[{route, status}];
    size_t b = 0;
    while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
    ++histogram_[b];
    latency_sum_ += seconds;
    ++latency_count_;
}

void Metrics::tile(bool cache_hit) {
    const int64_t s = now_s();
    std::lock_guard<std::mutex> lock(mutex_);
    ++tiles_;
    ++(cache_hit ? hits_ : misses_);
    advance_locked(s);
    ++ring_[size_t(s % ring_.size())];
}

void Metrics::rendered(double seconds, int level, int64_t pixels) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++renders_;
    render_seconds_ += seconds;
    auto& l = levels_[level];
    ++l.first;
    l.second += pixels;
}

void Metrics::composed() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++composed_;
}

void Metrics::preview() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++previews_;
}

void Metrics::rejected() {
    std::lock_guard<std::mutex> lock(mutex_);
    ++rejected_;
}

int64_t Metrics::tiles_served() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return tiles_;
}

double Metrics::tiles_per_second() const {
    const int64_t s = now_s();
    std::lock_guard<std::mutex> lock(mutex_);
    advance_locked(s);
    int64_t sum = 0;
    for (size_t i = 0; i < ring_.size(); ++i)
        if (i != size_t(s % ring_.size())) sum += ring_[i];
    const int64_t window = std::min<int64_t>(s, int64_t(ring_.size()) - 1);
    return window > 0 ? double(sum) / double(window) : 0.0;
}

std::string Metrics::text(const std::string& extra) const {
    const double rate = tiles_per_second();
    std::ostringstream o;
    std::lock_guard<std::mutex> lock(mutex_);
    o << "# HELP igan_http_requests_total HTTP requests by route and status.\n"
         "# TYPE igan_http_requests_total counter\n";
    for (const auto& [key, n] : requests_)
        o << "igan_http_requests_total{route=\"" << key.first << "\",code=\"" << key.second
          << "\"} " << n << "\n";
    o << "# HELP igan_http_request_duration_seconds Request latency.\n"
         "# TYPE igan_http_request_duration_seconds histogram\n";
    int64_t cumulative = 0;
    for (size_t b = 0; b <= kBuckets.size(); ++b) {
        cumulative += histogram_[b];
        char le[32];
        if (b < kBuckets.size())
            std::snprintf(le, sizeof le, "%g", kBuckets[b]);
        else
            std::snprintf(le, sizeof le, "+Inf");
        o << "igan_http_request_duration_seconds_bucket{le=\"" << le << "\"} " << cumulative
          << "\n";
    }
    o << "igan_http_request_duration_seconds_sum " << latency_sum_ << "\n"
      << "igan_http_request_duration_seconds_count " << latency_count_ << "\n";
    o << "# TYPE igan_tiles_served_total counter\nigan_tiles_served_total " << tiles_ << "\n"
      << "# TYPE igan_tile_cache_hits_total counter\nigan_tile_cache_hits_total " << hits_ << "\n"
      << "# TYPE igan_tile_cache_misses_total counter\nigan_tile_cache_misses_total " << misses_
      << "\n"
      << "# HELP igan_tiles_rendered_total Renders by the generator (tiles and /render).\n"
      << "# TYPE igan_tiles_rendered_total counter\nigan_tiles_rendered_total " << renders_ << "\n"
      << "# TYPE igan_render_seconds_total counter\nigan_render_seconds_total " << render_seconds_
      << "\n"
      << "# HELP igan_tiles_composed_total Coarser tiles box-filtered from four finer ones.\n"
      << "# TYPE igan_tiles_composed_total counter\nigan_tiles_composed_total " << composed_
      << "\n"
      << "# HELP igan_tile_previews_total Coarse students' tiles sent while the exact tile was "
         "made.\n"
      << "# TYPE igan_tile_previews_total counter\nigan_tile_previews_total " << previews_
      << "\n"
      << "# TYPE igan_rejected_total counter\nigan_rejected_total " << rejected_ << "\n"
      << "# HELP igan_tiles_per_second Tiles served per second over the last 10 s.\n"
      << "# TYPE igan_tiles_per_second gauge\nigan_tiles_per_second " << rate << "\n";
    o << "# HELP igan_level_renders_total Generator renders by level (< 0: partial ToRGB sum).\n"
         "# TYPE igan_level_renders_total counter\n";
    for (const auto& [level, l] : levels_)
        o << "igan_level_renders_total{level=\"" << level << "\"} " << l.first << "\n";
    o << "# HELP igan_rendered_pixels_total Pixels the generator rendered, by level.\n"
         "# TYPE igan_rendered_pixels_total counter\n";
    for (const auto& [level, l] : levels_)
        o << "igan_rendered_pixels_total{level=\"" << level << "\"} " << l.second << "\n";
    o << extra;
    return o.str();
}

}  // namespace igan
