#include "render/renderer.h"

#include <ATen/Parallel.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "render/coarse_student.h"

namespace igan {

Rect TilePlan::tile_rect(int64_t row, int64_t col) const {
    Rect t;
    t.x = rect.x + col * tile_w;
    t.y = rect.y + row * tile_h;
    t.w = std::min(tile_w, rect.w - col * tile_w);
    t.h = std::min(tile_h, rect.h - row * tile_h);
    return t;
}

TilePlan TilePlan::strips(int64_t row0, int64_t row1) const {
    TilePlan p = *this;
    p.rect.y = rect.y + row0 * tile_h;
    p.rect.h = std::min(rect.h, row1 * tile_h) - row0 * tile_h;
    p.rows = row1 - row0;
    return p;
}

TilePlan plan_tiles(const GeneratorConfig& config, const Rect& rect, const RenderOptions& options) {
    if (rect.w <= 0 || rect.h <= 0) throw Error("render size must be positive");
    if (options.tile <= 0) throw Error("tile size must be positive");
    if (options.fields.cyclic_period_px != 0)
        check_cyclic_period(config, options.fields.cyclic_period_px);
    TilePlan p;
    p.rect = rect;
    // A rectangle smaller than a tile gets a tile its own size, not a square it fills in part.
    p.tile_w = options.exact_tile ? options.tile : std::min(options.tile, rect.w);
    p.tile_h = options.exact_tile ? options.tile : std::min(options.tile, rect.h);
    if (options.max_tile_height > 0) p.tile_h = std::min(p.tile_h, options.max_tile_height);
    const CanvasGeometry geo(config, options.rgb_index);
    p.window_h = geo.window_for(p.tile_h);
    p.window_w = geo.window_for(p.tile_w);
    p.cols = (rect.w + p.tile_w - 1) / p.tile_w;
    p.rows = (rect.h + p.tile_h - 1) / p.tile_h;
    return p;
}

int64_t concurrent_passes(const RenderOptions& options, const PatchModel& model) {
    if (!model.device().is_cpu()) return 1;
    return options.workers > 0 ? options.workers : at::get_num_threads();
}

namespace {

// One forward pass: `count` tiles of strip `row` starting at column `col0`.
struct Job {
    int64_t row = 0, col0 = 0, count = 0;
};

int64_t resolve_workers(const RenderOptions& options, const PatchModel& model, size_t jobs) {
    return std::max<int64_t>(1, std::min<int64_t>(concurrent_passes(options, model), int64_t(jobs)));
}

// OpenBLAS's process-wide thread count, set for a scope and restored after it.
class BlasThreadsScope {
public:
    BlasThreadsScope(int threads, int restore) : restore_(restore) { set_blas_threads(threads); }
    ~BlasThreadsScope() { set_blas_threads(restore_); }
    BlasThreadsScope(const BlasThreadsScope&) = delete;
    BlasThreadsScope& operator=(const BlasThreadsScope&) = delete;

private:
    int restore_;
};

// Runs jobs on `workers` threads and hands each pass's output to `deliver` in job order on the
// calling thread. At most 2 x workers outputs wait for delivery, so memory stays bounded.
void run_concurrently(const std::vector<Job>& jobs, int64_t workers, int intra_op_threads,
                      const std::function<torch::Tensor(const Job&)>& run,
                      const std::function<void(const Job&, const torch::Tensor&)>& deliver) {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<torch::Tensor> results(jobs.size());  // undefined until the pass finishes
    size_t next = 0, delivered = 0;
    const size_t window = size_t(2 * workers);
    bool stop = false;
    std::exception_ptr error;

    auto work = [&] {
        set_this_thread_intra_op_threads(intra_op_threads);
        torch::NoGradGuard no_grad;
        for (;;) {
            size_t j;
            {
                std::unique_lock<std::mutex> lock(mutex);
                changed.wait(lock, [&] { return stop || next >= jobs.size() || next < delivered + window; });
                if (stop || next >= jobs.size()) return;
                j = next++;
            }
            try {
                torch::Tensor rgb = run(jobs[j]);
                std::lock_guard<std::mutex> lock(mutex);
                results[j] = std::move(rgb);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex);
                if (!error) error = std::current_exception();
                stop = true;
            }
            changed.notify_all();
        }
    };
    std::vector<std::thread> threads;
    auto finish = [&] {
        {
            std::lock_guard<std::mutex> lock(mutex);
            stop = true;
        }
        changed.notify_all();
        for (auto& t : threads) t.join();
    };
    try {
        for (int64_t i = 0; i < workers; ++i) threads.emplace_back(work);
        for (size_t j = 0; j < jobs.size(); ++j) {
            torch::Tensor rgb;
            {
                std::unique_lock<std::mutex> lock(mutex);
                changed.wait(lock, [&] { return error || results[j].defined(); });
                if (error) break;
                rgb = std::move(results[j]);
                results[j] = torch::Tensor();
                delivered = j + 1;
            }
            changed.notify_all();
            deliver(jobs[j], rgb);
        }
    } catch (...) {
        finish();
        throw;
    }
    finish();
    if (error) std::rethrow_exception(error);
}

// A GPU pass's output on its way to the host: copied asynchronously into pinned memory on the
// device's current stream, behind the pass's kernels, so the host can queue the next pass.
class HostCopy {
public:
    explicit HostCopy(const torch::Tensor& on_device)
        : host_(torch::empty(on_device.sizes(), on_device.options()
                                                    .device(torch::kCPU)
                                                    .pinned_memory(true))),
          done_(on_device.device().type()) {
        host_.copy_(on_device, /*non_blocking=*/true);
        done_.record(
            c10::impl::VirtualGuardImpl(on_device.device().type()).getStream(on_device.device()));
    }
    // Waits for the copy (polling: LibTorch 1.13's c10::Event cannot block on the host).
    torch::Tensor get() {
        while (!done_.query()) std::this_thread::sleep_for(std::chrono::microseconds(50));
        return host_;
    }

private:
    torch::Tensor host_;
    c10::Event done_;
};

// Passes on one GPU: pass j + 1 is queued before pass j's output is delivered, so the host's
// part (checks, cropping, quantisation, the consumer) overlaps the device's.
void run_pipelined(const std::vector<Job>& jobs,
                   const std::function<torch::Tensor(const Job&)>& run,
                   const std::function<void(const Job&, const torch::Tensor&)>& deliver) {
    std::unique_ptr<HostCopy> pending;
    for (size_t j = 0; j < jobs.size(); ++j) {
        auto next = std::make_unique<HostCopy>(run(jobs[j]));
        if (pending) deliver(jobs[j - 1], pending->get());
        pending = std::move(next);
    }
    if (pending) deliver(jobs.back(), pending->get());
}

}  // namespace

void render_tiles(PatchModel& model, const Rect& rect, const RenderOptions& options,
                  const TileFn& on_tile, const StripDoneFn& on_strip_done,
                  const TileProgressFn& on_progress) {
    render_plan_tiles(model, plan_tiles(model.config(), rect, options), options, on_tile,
                      on_strip_done, on_progress);
}

void render_plan_tiles(PatchModel& model, const TilePlan& planned, const RenderOptions& options,
                       const TileFn& on_tile, const StripDoneFn& on_strip_done,
                       const TileProgressFn& on_progress) {
    torch::NoGradGuard no_grad;
    const auto& config = model.config();
    const CanvasGeometry geo(config, options.rgb_index);
    TilePlan plan = planned;
    const Rect& rect = plan.rect;
    if (options.student && options.rgb_index != kStructureLevel)
        throw Error("a coarse student renders with rgb_index = kStructureLevel");
    const int64_t up = geo.upscale(), batch = std::max<int64_t>(1, options.batch);
    // A coarse head's level is its features resampled at q + lag (canvas.h): each tile computes
    // one more row and column from `shift` on and blends neighbours by `frac` (exact for any
    // tiling: a function of global pixel positions).
    const bool aligned = (options.head || options.features) && options.rgb_index != -1;
    const double lag = aligned ? geo.lag() : 0.0;
    const int64_t shift = int64_t(std::floor(lag)), extra = aligned ? 1 : 0;
    const float frac = float(lag - double(shift));
    if (aligned) {
        plan.window_h = geo.window_for(plan.tile_h + 1);
        plan.window_w = geo.window_for(plan.tile_w + 1);
    }
    auto computed = [&](Rect t) {
        t.x += aligned ? shift : 0, t.y += aligned ? shift : 0;
        t.w += extra, t.h += extra;
        return t;
    };
    auto blend = [&](const torch::Tensor& x) {  // (C, h + 1, w + 1) -> (C, h, w)
        const int64_t h = x.size(1) - 1, w = x.size(2) - 1;
        const auto rows = x.narrow(1, 0, h) * (1 - frac) + x.narrow(1, 1, h) * frac;
        return rows.narrow(2, 0, w) * (1 - frac) + rows.narrow(2, 1, w) * frac;
    };

    std::vector<Job> jobs;
    for (int64_t row = 0; row < plan.rows; ++row)
        for (int64_t col0 = 0; col0 < plan.cols; col0 += batch)
            jobs.push_back({row, col0, std::min(batch, plan.cols - col0)});

    // A tile's z_S window starts at the cell holding its top-left pixel.
    auto origin_of = [&](const Rect& t) {
        return std::make_pair(floor_div(t.y, up), floor_div(t.x, up));
    };
    auto run = [&](const Job& job) {
        std::vector<std::pair<int64_t, int64_t>> origins;
        for (int64_t col = job.col0; col < job.col0 + job.count; ++col)
            origins.push_back(origin_of(computed(plan.tile_rect(job.row, col))));
        // Fields drawn where the network runs: no host work or copy per tile on a GPU.
        auto inputs = options.student
                          ? student_patch_batch(options.student->config, config, options.fields,
                                                origins, plan.window_h, plan.window_w,
                                                model.device())
                          : make_patch_batch(config, options.fields, origins, plan.window_h,
                                             plan.window_w, options.rgb_index, model.device());
        inputs.head = options.head;
        inputs.features = options.features;
        inputs.student = options.student;
        const PrecisionScope precision(options.precision);
        return model.synthesize(inputs);
    };
    int64_t done = 0;
    auto deliver = [&](const Job& job, const torch::Tensor& rgb) {
        // NaN would quantize to black: a silent all-black image instead of an error.
        if (!torch::isfinite(rgb).all().item<bool>())
            throw Error("the generator produced NaN or infinite pixels (tile row " +
                        std::to_string(job.row) + "): the model's weights overflow in float32; "
                        "nothing was written");
        for (int64_t i = 0; i < job.count; ++i) {
            const Rect t = plan.tile_rect(job.row, job.col0 + i), c = computed(t);
            const auto [oy, ox] = origin_of(c);
            const auto out = rgb[i].narrow(1, c.y - up * oy, c.h).narrow(2, c.x - up * ox, c.w);
            on_tile(t, aligned ? blend(out) : out);
        }
        done += job.count;
        if (on_progress) on_progress(done, plan.count());
        if (job.col0 + job.count == plan.cols) {
            const Rect first = plan.tile_rect(job.row, 0);
            on_strip_done(first.y - rect.y, first.h);
        }
    };

    if (model.device().is_cuda()) return run_pipelined(jobs, run, deliver);
    const int64_t workers = resolve_workers(options, model, jobs.size());
    if (workers == 1) {
        for (const auto& job : jobs) deliver(job, run(job).to(torch::kCPU));
        return;
    }
    const int threads = at::get_num_threads();
    const int intra = std::max(1, int(threads / workers));
    const BlasThreadsScope blas(intra, threads);
    const IntraOpThreadsScope waiting_thread(1);
    run_concurrently(jobs, workers, intra, [&](const Job& job) { return run(job).to(torch::kCPU); },
                     deliver);
}

int64_t streaming_tile_height_cap(int64_t width) {
    constexpr int64_t kBudgetBytes = int64_t(32) << 20, kMinRows = 64;
    return std::max(kMinRows, kBudgetBytes / (2 * 3 * std::max<int64_t>(1, width)));
}

void render_rows(PatchModel& model, const Rect& rect, const RenderOptions& options,
                 const RowsFn& on_rows, const TileProgressFn& on_progress) {
    render_plan_rows(model, plan_tiles(model.config(), rect, options), options, on_rows,
                     on_progress);
}

void render_plan_rows(PatchModel& model, const TilePlan& plan, const RenderOptions& options,
                      const RowsFn& on_rows, const TileProgressFn& on_progress) {
    const Rect& rect = plan.rect;
    const int64_t stride = 3 * rect.w;
    std::vector<uint8_t> buffers[2];
    int current = 0;
    std::future<void> pending;
    try {
        render_plan_tiles(
            model, plan, options,
            [&](const Rect& t, const torch::Tensor& rgb) {
                auto& buf = buffers[current];
                if (buf.size() < size_t(stride * rgb.size(1))) buf.resize(stride * rgb.size(1));
                quantize_into(rgb, buf.data(), stride, t.x - rect.x);
            },
            [&](int64_t y0, int64_t rows) {
                if (pending.valid()) pending.get();
                uint8_t* data = buffers[current].data();
                pending = std::async(std::launch::async,
                                     [&on_rows, data, y0, rows] { on_rows(data, y0, rows); });
                current ^= 1;
            },
            on_progress);
        if (pending.valid()) pending.get();
    } catch (...) {
        if (pending.valid()) pending.wait();
        throw;
    }
}

torch::Tensor render_region(PatchModel& model, const Rect& rect, const RenderOptions& options) {
    torch::Tensor out;
    render_tiles(
        model, rect, options,
        [&](const Rect& t, const torch::Tensor& rgb) {
            if (!out.defined()) out = torch::empty({rgb.size(0), rect.h, rect.w});
            out.narrow(1, t.y - rect.y, t.h).narrow(2, t.x - rect.x, t.w).copy_(rgb);
        },
        [](int64_t, int64_t) {});
    return out;
}

void quantize_into(const torch::Tensor& rgb, uint8_t* out, int64_t row_stride, int64_t x0) {
    const auto q = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8).permute({1, 2, 0})
                       .contiguous();
    const int64_t h = q.size(0), row_bytes = q.size(1) * 3;
    const uint8_t* src = q.data_ptr<uint8_t>();
    for (int64_t r = 0; r < h; ++r)
        std::copy(src + r * row_bytes, src + (r + 1) * row_bytes, out + r * row_stride + 3 * x0);
}

}  // namespace igan
