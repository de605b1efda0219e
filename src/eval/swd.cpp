#include "eval/swd.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <random>
#include <thread>
#include <utility>

#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"

namespace igan {

namespace {

constexpr uint64_t kDirectionStream = 0xE7A15D00ull;  // away from the canvas streams
constexpr int64_t kDirectionChunk = 32;  // projections held at once by swd_draws

// (d, directions) random unit columns, double.
torch::Tensor projection_directions(int64_t d, const SwdConfig& c) {
    const int64_t total = c.dir_repeats * c.dirs_per_repeat;
    auto dirs = torch::empty({d, total});
    fill_normal_field(dirs.data_ptr<float>(), c.seed, kDirectionStream, 1, 0, 0, d, total);
    auto dirs64 = dirs.to(torch::kDouble);
    return dirs64 / dirs64.norm(2, 0, true);
}

void check_pair(const SwdDescriptors& a, const SwdDescriptors& b) {
    if (a.images() == 0 || b.images() == 0) throw Error("SWD: an image set is empty");
    if (a.height() != b.height() || a.width() != b.width())
        throw Error("SWD: the two sets differ in image size (" + std::to_string(a.width()) + "x" +
                    std::to_string(a.height()) + " vs " + std::to_string(b.width()) + "x" +
                    std::to_string(b.height()) + ")");
}

// The 5-tap binomial filter [1 4 6 4 1]/16 in both directions, one copy per channel.
torch::Tensor binomial_blur(const torch::Tensor& x, double gain) {
    const int64_t c = x.size(1);
    auto k1 = torch::tensor({1.0, 4.0, 6.0, 4.0, 1.0}, x.options()) / 16.0;
    auto k = (torch::outer(k1, k1) * gain).view({1, 1, 5, 5}).expand({c, 1, 5, 5}).contiguous();
    namespace F = torch::nn::functional;
    auto padded = F::pad(x, F::PadFuncOptions({2, 2, 2, 2}).mode(torch::kReflect));
    return F::conv2d(padded, k, F::Conv2dFuncOptions().groups(c));
}

torch::Tensor pyr_down(const torch::Tensor& x) {
    using torch::indexing::Slice;
    return binomial_blur(x, 1.0).index(
        {Slice(), Slice(), Slice(0, torch::indexing::None, 2), Slice(0, torch::indexing::None, 2)});
}

// Zero insertion, blur with gain 4, then crop to h x w (the finer level's size).
torch::Tensor pyr_up(const torch::Tensor& x, int64_t h, int64_t w) {
    using torch::indexing::Slice;
    auto up = torch::zeros({x.size(0), x.size(1), 2 * x.size(2), 2 * x.size(3)}, x.options());
    up.index_put_(
        {Slice(), Slice(), Slice(0, torch::indexing::None, 2), Slice(0, torch::indexing::None, 2)},
        x);
    return binomial_blur(up, 4.0).narrow(2, 0, h).narrow(3, 0, w);
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> swd_level_sizes(const SwdConfig& c, int64_t h, int64_t w) {
    std::vector<std::pair<int64_t, int64_t>> sizes;
    while (std::min(h, w) >= c.min_resolution &&
           (c.max_levels <= 0 || int64_t(sizes.size()) < c.max_levels)) {
        sizes.emplace_back(h, w);
        h = (h + 1) / 2;
        w = (w + 1) / 2;
    }
    return sizes;
}

std::vector<torch::Tensor> laplacian_pyramid(const torch::Tensor& images, int64_t levels) {
    TORCH_CHECK(images.dim() == 4, "laplacian_pyramid: expected (N, C, H, W)");
    std::vector<torch::Tensor> pyramid{images.to(torch::kFloat)};
    for (int64_t i = 1; i < levels; ++i) {
        auto coarse = pyr_down(pyramid.back());
        pyramid.back() =
            pyramid.back() - pyr_up(coarse, pyramid.back().size(2), pyramid.back().size(3));
        pyramid.push_back(coarse);
    }
    return pyramid;
}

SwdDescriptors::SwdDescriptors(const SwdConfig& config, int64_t h, int64_t w)
    : config_(config), h_(h), w_(w), sizes_(swd_level_sizes(config, h, w)) {
    if (sizes_.empty())
        throw Error("SWD needs images of at least " + std::to_string(config.min_resolution) +
                    " px per side, got " + std::to_string(w) + "x" + std::to_string(h));
    if (config.nhood_size > config.min_resolution || config.nhood_size < 1)
        throw Error("SWD: neighbourhood size must be in [1, min_resolution]");
    levels_.resize(sizes_.size());
    // One position set per level, shared by every image of both sets (a fixed random design).
    const int64_t k = config.nhood_size;
    for (size_t l = 0; l < sizes_.size(); ++l) {
        // Raw 64-bit draws reduced modulo the range: identical on every standard library.
        std::mt19937_64 rng(splitmix64(config.seed + l));
        const uint64_t ny = uint64_t(sizes_[l].first - k + 1),
                       nx = uint64_t(sizes_[l].second - k + 1);
        std::vector<std::pair<int64_t, int64_t>> pos;
        for (int64_t i = 0; i < config.nhoods_per_image; ++i) {
            const int64_t y = int64_t(rng() % ny);
            pos.emplace_back(y, int64_t(rng() % nx));
        }
        positions_.push_back(std::move(pos));
    }
}

void SwdDescriptors::add(const torch::Tensor& image) {
    TORCH_CHECK(
        image.dim() == 3 && image.size(0) == 3 && image.size(1) == h_ && image.size(2) == w_,
        "SwdDescriptors::add: expected (3, ", h_, ", ", w_, "), got ", image.sizes());
    torch::NoGradGuard no_grad;
    const auto pyramid =
        laplacian_pyramid(image.to(torch::kCPU, torch::kFloat).unsqueeze(0), levels());
    const int64_t k = config_.nhood_size;
    for (size_t l = 0; l < pyramid.size(); ++l) {
        const auto level = pyramid[l][0];
        std::vector<torch::Tensor> nhoods;
        nhoods.reserve(positions_[l].size());
        for (const auto& [y, x] : positions_[l])
            nhoods.push_back(level.narrow(1, y, k).narrow(2, x, k));
        levels_[l].push_back(torch::stack(nhoods));
    }
    ++images_;
}

std::vector<torch::Tensor> SwdDescriptors::finalize() const {
    std::vector<torch::Tensor> out;
    for (const auto& per_image : levels_) {
        if (per_image.empty()) throw Error("SWD: no images in the set");
        auto d = torch::cat(per_image).to(torch::kDouble);  // (n, 3, k, k)
        const auto mean = d.mean({0, 2, 3}, true);
        const auto std = (d - mean).pow(2).mean({0, 2, 3}, true).sqrt().clamp_min(1e-12);
        out.push_back(((d - mean) / std).reshape({d.size(0), -1}));
    }
    return out;
}

double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, const SwdConfig& c) {
    TORCH_CHECK(
        a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1) && a.size(0) > 0 && b.size(0) > 0,
        "sliced_wasserstein: expected (n, d) and (m, d)");
    torch::NoGradGuard no_grad;
    const int64_t total = c.dir_repeats * c.dirs_per_repeat;
    const auto dirs64 = projection_directions(a.size(1), c);
    // (directions, points), one contiguous row per direction.
    const auto pa = dirs64.t().matmul(a.to(torch::kCPU, torch::kDouble).t()).contiguous();
    const auto pb = dirs64.t().matmul(b.to(torch::kCPU, torch::kDouble).t()).contiguous();
    const int64_t n = a.size(0), m = b.size(0);
    std::vector<double> ra(static_cast<size_t>(n)), rb(static_cast<size_t>(m));
    double sum = 0;
    for (int64_t k = 0; k < total; ++k) {
        const double* pa_k = pa.data_ptr<double>() + k * n;
        const double* pb_k = pb.data_ptr<double>() + k * m;
        ra.assign(pa_k, pa_k + n);
        rb.assign(pb_k, pb_k + m);
        std::sort(ra.begin(), ra.end());
        std::sort(rb.begin(), rb.end());
        // W1 = integral over t in [0, 1] of |Fa^-1(t) - Fb^-1(t)|: both quantile functions are
        // steps (ra[i] on [i/n, (i+1)/n)), so walk the merged breakpoints. Equal counts reduce
        // to the mean |ra[i] - rb[i]| of ProGAN.
        int64_t i = 0, j = 0;
        double t = 0, w = 0;
        while (i < n && j < m) {
            const int64_t lhs = (i + 1) * m, rhs = (j + 1) * n;  // compares (i+1)/n, (j+1)/m
            const double next = lhs <= rhs ? double(i + 1) / double(n) : double(j + 1) / double(m);
            w += (next - t) * std::abs(ra[size_t(i)] - rb[size_t(j)]);
            t = next;
            if (lhs <= rhs) ++i;
            if (rhs <= lhs) ++j;
        }
        sum += w;
    }
    return sum / double(total);
}

SwdResult swd(const SwdDescriptors& a, const SwdDescriptors& b) {
    check_pair(a, b);
    const auto da = a.finalize(), db = b.finalize();
    SwdResult r;
    for (size_t l = 0; l < da.size(); ++l) {
        r.levels.push_back(1e3 * sliced_wasserstein(da[l], db[l], a.config()));
        const auto& [h, w] = a.level_sizes()[l];
        r.resolutions.push_back(std::min(h, w));
    }
    double sum = 0;
    for (double v : r.levels) sum += v;
    r.mean = sum / double(r.levels.size());
    return r;
}

namespace {

// Sorts items by their high 32 bits (an order-preserving code of a float; the low 32 bits carry
// a tag): LSD radix sort, three passes of 11 bits. `scratch` is resized as needed.
void radix_sort(std::vector<uint64_t>& items, std::vector<uint64_t>& scratch) {
    constexpr int kBits = 11;
    constexpr size_t kBuckets = size_t(1) << kBits;
    scratch.resize(items.size());
    std::vector<size_t> counts(3 * kBuckets, 0);
    for (uint64_t v : items)
        for (int p = 0; p < 3; ++p)
            ++counts[size_t(p) * kBuckets + ((v >> (32 + p * kBits)) & (kBuckets - 1))];
    uint64_t* src = items.data();
    uint64_t* dst = scratch.data();
    for (int p = 0; p < 3; ++p) {
        size_t* c = counts.data() + size_t(p) * kBuckets;
        size_t offset = 0;
        for (size_t b = 0; b < kBuckets; ++b) offset += std::exchange(c[b], offset);
        for (size_t i = 0; i < items.size(); ++i)
            dst[c[(src[i] >> (32 + p * kBits)) & (kBuckets - 1)]++] = src[i];
        std::swap(src, dst);
    }
    if (src != items.data()) items.swap(scratch);
}

// A float's bits, mapped so that unsigned order is numeric order, and back.
uint32_t order_code(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return (bits & 0x80000000u) ? ~bits : bits | 0x80000000u;
}
float from_order_code(uint32_t code) {
    const uint32_t bits = (code & 0x80000000u) ? code ^ 0x80000000u : ~code;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

}  // namespace

std::vector<SwdResult> swd_draws(const SwdDescriptors& a, const SwdDescriptors& b,
                                 const std::vector<Draw>& draws_a, const std::vector<Draw>& draws_b,
                                 int threads) {
    check_pair(a, b);
    const int64_t na = a.images(), nb = b.images(), draws = int64_t(draws_a.size());
    if (draws_b.size() != draws_a.size()) throw Error("SWD: unpaired bootstrap draws");
    // Signed weight of one descriptor of each image, per draw: + for a, - for b; each side sums
    // to 1 over its descriptors.
    const int64_t nhood = a.config().nhoods_per_image;
    std::vector<double> weights(size_t(draws * (na + nb)));
    for (int64_t t = 0; t < draws; ++t) {
        const auto& da = draws_a[size_t(t)];
        const auto& db = draws_b[size_t(t)];
        if (int64_t(da.size()) != na || int64_t(db.size()) != nb)
            throw Error("SWD: a bootstrap draw does not match its set's size");
        double sa = 0, sb = 0;
        for (int32_t k : da) sa += k;
        for (int32_t k : db) sb += k;
        double* w = weights.data() + t * (na + nb);
        for (int64_t i = 0; i < na; ++i) w[i] = da[size_t(i)] / (sa * double(nhood));
        for (int64_t i = 0; i < nb; ++i) w[na + i] = -db[size_t(i)] / (sb * double(nhood));
    }

    torch::NoGradGuard no_grad;
    const SwdConfig& c = a.config();
    const int64_t total = c.dir_repeats * c.dirs_per_repeat;
    const int64_t chunks = (total + kDirectionChunk - 1) / kDirectionChunk;
    const int workers = int(std::clamp<int64_t>(threads, 1, chunks));
    const auto fa = a.finalize(), fb = b.finalize();
    const auto dirs = projection_directions(fa[0].size(1), c).to(torch::kFloat);
    std::vector<SwdResult> results(static_cast<size_t>(draws));
    for (size_t l = 0; l < fa.size(); ++l) {
        const auto pa_all = fa[l].to(torch::kFloat), pb_all = fb[l].to(torch::kFloat);
        const int64_t ra = pa_all.size(0), rb = pb_all.size(0);
        // distance[k * draws + t]: direction k, draw t.
        std::vector<double> distance(size_t(total * draws));
        // Worker w takes chunks w, w + workers, ...; every direction's number is computed the
        // same way whichever worker takes it.
        auto work = [&](int w) {
            torch::NoGradGuard guard;
            std::vector<uint64_t> items(size_t(ra + rb)), scratch;
            std::vector<int32_t> tags(items.size());
            std::vector<double> gaps(items.size());
            for (int64_t chunk = w; chunk < chunks; chunk += workers) {
                const int64_t k0 = chunk * kDirectionChunk;
                const int64_t count = std::min(kDirectionChunk, total - k0);
                const auto dk = dirs.narrow(1, k0, count).t();
                const auto pa = dk.matmul(pa_all.t()).contiguous();
                const auto pb = dk.matmul(pb_all.t()).contiguous();
                for (int64_t k = 0; k < count; ++k) {
                    const float* va = pa.data_ptr<float>() + k * ra;
                    const float* vb = pb.data_ptr<float>() + k * rb;
                    for (int64_t i = 0; i < ra; ++i)
                        items[size_t(i)] = uint64_t(order_code(va[i])) << 32 | uint64_t(i / nhood);
                    for (int64_t i = 0; i < rb; ++i)
                        items[size_t(ra + i)] =
                            uint64_t(order_code(vb[i])) << 32 | uint64_t(na + i / nhood);
                    radix_sort(items, scratch);
                    for (size_t i = 0; i < items.size(); ++i) {
                        tags[i] = int32_t(items[i] & 0xFFFFFFFFu);
                        if (i + 1 < items.size())
                            gaps[i] = double(from_order_code(uint32_t(items[i + 1] >> 32))) -
                                      double(from_order_code(uint32_t(items[i] >> 32)));
                    }
                    for (int64_t t = 0; t < draws; ++t) {
                        const double* wt = weights.data() + t * (na + nb);
                        double cdf = 0, sum = 0;  // F_a - F_b over the gap after item i
                        for (size_t i = 0; i + 1 < items.size(); ++i) {
                            cdf += wt[tags[i]];
                            sum += std::abs(cdf) * gaps[i];
                        }
                        distance[size_t((k0 + k) * draws + t)] = sum;
                    }
                }
            }
        };
        // Every projection runs on one intra-op and one OpenBLAS thread, also with one worker, so
        // the numbers do not depend on the process's thread count (a matmul split over threads
        // sums in another order).
        set_blas_threads(1);
        std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
        auto run = [&](int w) {
            set_this_thread_intra_op_threads(1);
            try {
                work(w);
            } catch (...) {
                errors[size_t(w)] = std::current_exception();
            }
        };
        if (workers == 1) {
            IntraOpThreadsScope restore(1);
            run(0);
        } else {
            std::vector<std::thread> pool;
            for (int w = 0; w < workers; ++w) pool.emplace_back(run, w);
            for (auto& t : pool) t.join();
        }
        set_blas_threads(at::get_num_threads());
        for (const auto& e : errors)
            if (e) std::rethrow_exception(e);
        const auto& [h, w] = a.level_sizes()[l];
        for (int64_t t = 0; t < draws; ++t) {
            double sum = 0;  // in direction order: the same on any number of threads
            for (int64_t k = 0; k < total; ++k) sum += distance[size_t(k * draws + t)];
            results[size_t(t)].levels.push_back(1e3 * sum / double(total));
            results[size_t(t)].resolutions.push_back(std::min(h, w));
        }
    }
    for (auto& r : results) {
        double sum = 0;
        for (double v : r.levels) sum += v;
        r.mean = sum / double(r.levels.size());
    }
    return results;
}

}  // namespace igan
