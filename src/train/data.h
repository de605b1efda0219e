#pragma once
// Training data: any folder of JPEG/PNG photos. The pipeline follows the original (centre
// square, downscale, horizontal flip, random patch crop whose vertical position in the full
// image is the regression label) plus a random scale of the short side, which matters with
// only tens of photos. Batches are a pure function of (seed, step), so prefetching threads,
// resuming and data-parallel ranks all see the same samples.
#include <torch/torch.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace igan {

struct DataOptions {
    std::string folder;
    int64_t full_size = 197;   // side of the square "full image"
    int64_t patch_size = 101;  // crop fed to D
    double max_scale = 1.5;    // short side scaled to full_size * U(1, max_scale) before cropping
    bool flip = true;
    uint64_t seed = 0;
};

struct Batch {
    torch::Tensor images;  // (B, 3, P, P) in [-1, 1]
    torch::Tensor labels;  // (B,) vertical position of each patch in its full image, in [-1, 1]
};

class ImageDataset {
public:
    // Decodes every image once (reports and skips unreadable files via `warn`).
    ImageDataset(const DataOptions& options, const std::function<void(const std::string&)>& warn);
    int64_t size() const { return int64_t(images_.size()); }
    // Samples [begin, end) of the global batch of `step`.
    Batch batch(int64_t step, int64_t begin, int64_t end) const;
    const std::vector<std::string>& files() const { return files_; }

private:
    DataOptions options_;
    std::vector<torch::Tensor> images_;  // (3, H, W) float in [-1, 1], short side ~ max scale
    std::vector<std::string> files_;
};

// Prepares the next batches on a background thread while the trainer works.
class Prefetcher {
public:
    Prefetcher(const ImageDataset& data, int64_t first_step, int64_t begin, int64_t end,
               int depth = 2);
    ~Prefetcher();
    Batch next();  // batches for first_step, first_step + 1, ...

private:
    void run();
    const ImageDataset& data_;
    int64_t step_, begin_, end_;
    size_t depth_;
    std::deque<Batch> queue_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::exception_ptr error_;
    std::thread thread_;
};

}  // namespace igan
