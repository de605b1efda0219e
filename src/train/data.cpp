#include "train/data.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/rng.h"
#include "io/png.h"

namespace igan {

namespace F = torch::nn::functional;

namespace {

torch::Tensor resize(const torch::Tensor& img, int64_t h, int64_t w) {
    return F::interpolate(img.unsqueeze(0), F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{h, w})
                                                .mode(torch::kBilinear)
                                                .align_corners(false)
                                                .antialias(true))
        .squeeze(0);
}

bool is_image_file(const std::filesystem::path& p) {
    auto ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

}  // namespace

ImageDataset::ImageDataset(const DataOptions& options,
                           const std::function<void(const std::string&)>& warn)
    : options_(options) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(options.folder))
        throw UsageError("--data " + options.folder + ": not a folder of images");
    std::vector<fs::path> paths;
    for (const auto& e : fs::recursive_directory_iterator(options.folder))
        if (is_image_file(e.path())) paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    const int64_t keep_short = int64_t(std::ceil(options.full_size * options.max_scale));
    for (const auto& p : paths) {
        try {
            const Image img = read_image(p.string());
            auto t = torch::from_blob(const_cast<uint8_t*>(img.pixels.data()),
                                      {img.height, img.width, 3}, torch::kUInt8)
                         .permute({2, 0, 1})
                         .to(torch::kFloat32)
                         .div(127.5)
                         .sub(1);
            const int64_t short_side = std::min(img.height, img.width);
            if (short_side < options.patch_size) {
                warn(p.string() + ": smaller than the patch size, skipped");
                continue;
            }
            if (short_side > keep_short) {
                const double s = double(keep_short) / short_side;
                t = resize(t, std::max<int64_t>(keep_short, std::lround(img.height * s)),
                           std::max<int64_t>(keep_short, std::lround(img.width * s)));
            } else {
                t = t.contiguous();
            }
            images_.push_back(t);
            files_.push_back(p.string());
        } catch (const Error& e) {
            warn(std::string(e.what()) + " (skipped)");
        }
    }
    if (images_.empty())
        throw UsageError("--data " + options.folder + ": no readable .png/.jpg images found");
}

Batch ImageDataset::batch(int64_t step, int64_t begin, int64_t end) const {
    RECORD_USER_SCOPE("data_batch");  // bench/train_bench.cpp's phases
    const int64_t p = options_.patch_size, full = options_.full_size;
    Batch b;
    std::vector<torch::Tensor> imgs;
    std::vector<float> labels;
    for (int64_t i = begin; i < end; ++i) {
        // Seven uniforms per sample from a counter-based stream keyed by (seed, step, sample).
        const auto u0 = uniforms(options_.seed, kDataStream, step, i, 0);
        const auto u1 = uniforms(options_.seed, kDataStream, step, i, 1);
        auto unif = [&](int k) { return k < 4 ? u0[k] : u1[k - 4]; };
        const int64_t idx = std::min<int64_t>(size() - 1, int64_t(unif(0) * size()));
        const auto& src = images_[idx];
        const int64_t h = src.size(1), w = src.size(2);
        const int64_t target_short =
            std::min<int64_t>(std::min(h, w), std::lround(full * (1 + unif(1) * (options_.max_scale - 1))));
        const double s = double(std::max<int64_t>(target_short, full)) / std::min(h, w);
        // Crop the square "full image" in source pixels, then resize it to full x full.
        const int64_t side = std::min<int64_t>(std::min(h, w), std::lround(full / s));
        const int64_t y0 = int64_t(unif(2) * (h - side + 1)), x0 = int64_t(unif(3) * (w - side + 1));
        auto sq = src.narrow(1, std::min(y0, h - side), side).narrow(2, std::min(x0, w - side), side);
        auto full_img = side == full ? sq : resize(sq, full, full);
        if (options_.flip && unif(4) < 0.5) full_img = full_img.flip({2});
        const int64_t span = full - p;
        const int64_t py = std::min<int64_t>(span, int64_t(unif(5) * (span + 1)));
        const int64_t px = std::min<int64_t>(span, int64_t(unif(6) * (span + 1)));
        imgs.push_back(full_img.narrow(1, py, p).narrow(2, px, p));
        labels.push_back(span > 0 ? float(2.0 * py / span - 1.0) : 0.f);
    }
    b.images = torch::stack(imgs).contiguous();
    b.labels = torch::tensor(labels);
    return b;
}

Prefetcher::Prefetcher(const ImageDataset& data, int64_t first_step, int64_t begin, int64_t end,
                       int depth)
    : data_(data), step_(first_step), begin_(begin), end_(end),
      depth_(size_t(depth)), thread_([this] { run(); }) {}

Prefetcher::~Prefetcher() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void Prefetcher::run() {
    try {
        for (int64_t step = step_;; ++step) {
            Batch b = data_.batch(step, begin_, end_);
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return stop_ || queue_.size() < depth_; });
            if (stop_) return;
            queue_.push_back(std::move(b));
            cv_.notify_all();
        }
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        cv_.notify_all();
    }
}

Batch Prefetcher::next() {
    RECORD_USER_SCOPE("data_wait");
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return !queue_.empty() || error_; });
    if (queue_.empty()) std::rethrow_exception(error_);
    Batch b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
}

}  // namespace igan
