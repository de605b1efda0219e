#pragma once
// `igan bench`: generation speed against a convolution peak measured in the same run, and the
// peak RSS of one render (src/eval/bench.cpp). The CLI measures RSS in child processes, as peak
// RSS only grows.
#include <cstdint>
#include <string>

namespace igan {

struct BenchRequest {
    std::string config = "tiny";
    std::string device = "cpu";  // on cuda the peak is a batch-16 convolution there; no --scaling
    std::string precision = "fp32";  // of the convolutions, the peak's included
    int threads = 0;
    int64_t tile = 0, batch = 1;
    int64_t workers = 0;  // concurrent forward passes (0: one per thread); each timed run renders
                          // one strip of workers x batch tiles
    int repetitions = 3;
    bool profile = false;  // add a per-layer profile ("profile" key)
    bool scaling = false;  // also time 1 thread: "thread_scaling" = tiles/s(threads) / tiles/s(1)
};
std::string run_bench(const BenchRequest& request);  // one JSON object

// The child side of the RSS measurement: renders a width x height canvas with a random model of
// `config`, discarding rows, and returns the process's peak RSS in MB.
double measure_render_rss(const std::string& config, int64_t width, int64_t height, int64_t tile,
                          int threads, int64_t workers);

}  // namespace igan
