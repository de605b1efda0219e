#include "model/layer_clock.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <mutex>

namespace igan {

namespace {

std::atomic<bool> g_on{false};
std::mutex g_mutex;
LayerClockTotals g_totals;

}  // namespace

void layer_clock_enable(bool on) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (on) g_totals = {};
    g_on = on;
}

LayerClockTotals layer_clock_totals() {
    std::lock_guard<std::mutex> lock(g_mutex);
    return g_totals;
}

LayerClockScope::LayerClockScope(LayerKind kind, double macs, bool counted)
    : kind_(kind), macs_(macs), on_(counted && g_on.load(std::memory_order_relaxed)) {
    if (on_) start_ = std::chrono::steady_clock::now();
}

LayerClockScope::~LayerClockScope() {
    if (!on_) return;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double threads = at::get_num_threads();
    std::lock_guard<std::mutex> lock(g_mutex);
    g_totals.macs[int(kind_)] += macs_;
    g_totals.thread_seconds[int(kind_)] += s * threads;
}

}  // namespace igan
