#pragma once
// Thread-seconds and MACs of the texture synthesizer's layers by kind, summed over every
// forward pass on any thread while enabled: `igan bench` turns them into per-kind fractions of
// its peak, measured inside the real render rather than on layers run alone.
#include <chrono>
#include <cstdint>

namespace igan {

enum class LayerKind { conv3x3, up };

struct LayerClockTotals {
    double macs[2] = {0, 0};
    double thread_seconds[2] = {0, 0};  // wall seconds times the layer's intra-op threads
};

// Starts accumulating from zero, or stops. Call while no forward pass runs.
void layer_clock_enable(bool on);
LayerClockTotals layer_clock_totals();

// Adds its scope's time to `kind` when the clock is on and `counted` (one flag read when off).
class LayerClockScope {
public:
    LayerClockScope(LayerKind kind, double macs, bool counted = true);
    ~LayerClockScope();
    LayerClockScope(const LayerClockScope&) = delete;
    LayerClockScope& operator=(const LayerClockScope&) = delete;

private:
    LayerKind kind_;
    double macs_;
    bool on_;
    std::chrono::steady_clock::time_point start_;
};

}  // namespace igan
