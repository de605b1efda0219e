// `igan eval`: SWD, FID/KID, their ScaleInv variants and the seam score (SPEC §6). The metric
// code lives in src/eval/; this file reads folders, generates samples and assembles the JSON.
#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "api/device.h"
#include "core/error.h"
#include "core/rng.h"
#include "eval/fid.h"
#include "eval/images.h"
#include "eval/inception.h"
#include "eval/scaleinv.h"
#include "eval/seam.h"
#include "eval/swd.h"
#include "render/canvas.h"
#include "render/renderer.h"
#include "render/styled_generator.h"
#include "weights/model_file.h"

namespace igan {

namespace {

using ojson = nlohmann::ordered_json;

constexpr int64_t kRenderTile = 256;
constexpr int64_t kInceptionBatch = 8;
constexpr int64_t kMaxSeamSeeds = 2;
constexpr int64_t kSeamSeedWork = 12;
constexpr int64_t kMaxScale = 64;

class Progressor {
public:
    Progressor(const ProgressFn& fn, int64_t total) : fn_(fn), total_(total) {}
    void step(int64_t work = 1) {
        done_ += work;
        if (fn_)
            fn_({done_, total_,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count()});
    }

private:
    const ProgressFn& fn_;
    int64_t total_, done_ = 0;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// What the requested metrics need from one image set, gathered one image at a time.
class ImageSet {
public:
    ImageSet(bool want_swd, InceptionV3* inception, torch::Device device, int64_t h, int64_t w)
        : inception_(inception), device_(device), h_(h), w_(w) {
        if (want_swd) swd_.emplace(SwdConfig{}, h, w);
    }
    int64_t height() const { return h_; }
    int64_t width() const { return w_; }
    int64_t count() const { return count_; }

    void add(const torch::Tensor& image) {
        if (swd_) swd_->add(image);
        if (inception_) {
            pending_.push_back(image);
            if (int64_t(pending_.size()) == kInceptionBatch) flush();
        }
        ++count_;
    }
    const SwdDescriptors& swd() const { return *swd_; }
    torch::Tensor features() {
        flush();
        return torch::cat(features_);
    }

private:
    void flush() {
        if (pending_.empty()) return;
        torch::NoGradGuard no_grad;
        features_.push_back((*inception_)->forward(torch::stack(pending_).to(device_)).cpu());
        pending_.clear();
    }

    std::optional<SwdDescriptors> swd_;
    InceptionV3* inception_;
    torch::Device device_;
    int64_t h_, w_, count_ = 0;
    std::vector<torch::Tensor> pending_, features_;
};

std::string size_str(const torch::Tensor& img) {
    return std::to_string(img.size(2)) + "x" + std::to_string(img.size(1));
}

// Reads a folder into `set`. resize > 0: centre-crop + resize; otherwise every image must
// already have the set's size.
void read_folder(const std::vector<std::string>& paths, int64_t resize, ImageSet& set,
                 Progressor& progress) {
    for (const auto& path : paths) {
        auto img = load_image_tensor(path);
        if (resize > 0) {
            img = center_crop_resize(img, resize);
        } else if (img.size(1) != set.height() || img.size(2) != set.width()) {
            throw UsageError(path + " is " + size_str(img) + " but the evaluation size is " +
                             std::to_string(set.width()) + "x" + std::to_string(set.height()) +
                             ": every image must have the same size (or pass --size S to "
                             "centre-crop and resize all of them to S x S)");
        }
        set.add(img);
        progress.step();
    }
}

struct Wanted {
    bool swd = false, fid = false, kid = false, seam = false;
    bool inception() const { return fid || kid; }
};

Wanted parse_metrics(const std::vector<std::string>& metrics) {
    Wanted w;
    for (const auto& m : metrics) {
        bool* flag = m == "swd"    ? &w.swd
                     : m == "fid"  ? &w.fid
                     : m == "kid"  ? &w.kid
                     : m == "seam" ? &w.seam
                                   : nullptr;
        if (!flag) throw UsageError("unknown metric '" + m + "': use swd, fid, kid or seam");
        *flag = true;
    }
    if (metrics.empty()) throw UsageError("--metrics is empty: use swd, fid, kid or seam");
    return w;
}

// The set-vs-set metrics into `out`.
void compare(const Wanted& want, ImageSet& fake, ImageSet& real, const EvalRequest& r, ojson& out) {
    if (want.swd) {
        const auto s = swd(fake.swd(), real.swd());
        out["swd"] = s.mean;
        out["swd_levels"] = s.levels;
        out["swd_resolutions"] = s.resolutions;
    }
    if (want.inception()) {
        const auto ff = fake.features(), fr = real.features();
        if (want.fid) out["fid"] = frechet_distance(gaussian_stats(ff), gaussian_stats(fr));
        if (want.kid) {
            const auto k = kernel_inception_distance(ff, fr, r.kid_subsets, r.kid_subset_size);
            out["kid"] = k.mean;
            out["kid_std"] = k.std;
            out["kid_subset_size"] = k.subset_size;
        }
    }
}

ojson swd_parameters() {
    const SwdConfig c;
    return {{"nhood_size", c.nhood_size},
            {"nhoods_per_image", c.nhoods_per_image},
            {"min_resolution", c.min_resolution},
            {"max_levels", c.max_levels},
            {"projections", c.dir_repeats * c.dirs_per_repeat},
            {"scale", 1e3}};
}

}  // namespace

std::vector<std::string> eval_metric_names() { return {"swd", "fid", "kid", "seam"}; }

void validate_eval_request(const EvalRequest& r) {
    const Wanted want = parse_metrics(r.metrics);
    if (r.model.empty() == r.fake.empty())
        throw UsageError("eval needs exactly one of --model (generate the samples) or --fake DIR");
    if (r.real.empty()) throw UsageError("eval needs --real DIR");
    if (want.inception() && r.inception.empty())
        throw UsageError(
            "fid and kid need --inception W.safetensors (pytorch-fid InceptionV3 "
            "weights; docs/evaluation.md shows the conversion)");
    if (want.seam && r.model.empty())
        throw UsageError("the seam score renders tiles itself: it needs --model");
    if (r.scales.empty()) throw UsageError("--scales is empty");
    for (int64_t s : r.scales)
        if (s < 1 || s > kMaxScale)
            throw UsageError("--scales: each factor must be in [1, " + std::to_string(kMaxScale) +
                             "], got " + std::to_string(s));
    if (r.model.empty() && (r.scales.size() != 1 || r.scales[0] != 1))
        throw UsageError("--scales needs --model (ScaleInv generates its own samples)");
    if (!r.model.empty() && r.size != 0)
        throw UsageError(
            "--size applies to --fake folders; with --model the evaluation size is "
            "the model's training size");
    if (r.n < 0) throw UsageError("--n must be >= 0");
    if (r.size < 0) throw UsageError("--size must be >= 0");
    if (r.tile < 0 || r.tile > kMaxTile) throw UsageError("--tile must be in [0, 4096]");
    if (r.seam_tile < 0) throw UsageError("--seam-tile must be >= 0");
    if (r.kid_subsets < 1 || r.kid_subset_size < 2)
        throw UsageError("--kid-subsets must be >= 1 and --kid-subset-size >= 2");
}

std::string run_eval(const EvalRequest& r, const ProgressFn& on_progress) {
    validate_eval_request(r);
    const Wanted want = parse_metrics(r.metrics);
    const auto start = std::chrono::steady_clock::now();
    const torch::Device device = parse_device(r.device);
    torch::NoGradGuard no_grad;

    // Everything that can fail fast does so before the long part.
    const auto real_paths = list_images(r.real);
    std::vector<std::string> fake_paths;
    if (!r.fake.empty()) fake_paths = list_images(r.fake);
    std::optional<LoadedGenerator> model;
    if (!r.model.empty()) {
        model = load_generator(r.model, r.config_override);
        model->generator->to(device);
        model->generator->eval();
    }
    InceptionV3 inception{nullptr};
    if (want.inception()) inception = load_inception(r.inception, device);
    InceptionV3* net = want.inception() ? &inception : nullptr;

    ojson out;
    out["mode"] = model ? "model" : "folders";
    out["metrics"] = r.metrics;

    if (!model) {
        // Folder mode: the first real image fixes the size unless --size resizes everything.
        int64_t h = r.size, w = r.size;
        if (r.size == 0) {
            const auto first = load_image_tensor(real_paths.front());
            h = first.size(1);
            w = first.size(2);
            const auto first_fake = load_image_tensor(fake_paths.front());
            if (first_fake.size(1) != h || first_fake.size(2) != w)
                throw UsageError("the fake images (" + fake_paths.front() + ": " +
                                 size_str(first_fake) + ") and the real images (" +
                                 real_paths.front() + ": " + size_str(first) +
                                 ") differ in size; pass --size S to centre-crop and resize "
                                 "both to S x S");
        }
        Progressor progress(on_progress, int64_t(real_paths.size() + fake_paths.size()));
        ImageSet real(want.swd, net, device, h, w), fake(want.swd, net, device, h, w);
        read_folder(fake_paths, r.size, fake, progress);
        read_folder(real_paths, r.size, real, progress);
        out["fake"] = r.fake;
        out["real"] = r.real;
        out["n_fake"] = fake.count();
        out["n_real"] = real.count();
        out["width"] = w;
        out["height"] = h;
        compare(want, fake, real, r, out);
    } else {
        const GeneratorConfig& gc = model->config.generator;
        const int64_t size = gc.full_size;
        const int64_t n = r.n > 0 ? r.n : int64_t(real_paths.size());
        const bool set_metrics = want.swd || want.inception();
        const int64_t seam_seeds = want.seam ? std::min(n, kMaxSeamSeeds) : 0;
        // Work units: one per training-size image; a sample at scale s costs s^2, a seam seed
        // about three renders of a 4 x 4-tile square (~4 units each, with the tiles' margins).
        int64_t total = kSeamSeedWork * seam_seeds;
        if (set_metrics) {
            total += int64_t(real_paths.size());
            for (int64_t scale : r.scales) total += n * scale * scale;
        }
        Progressor progress(on_progress, total);

        out["model"] = r.model;
        out["model_config"] = model->config.name;
        out["real"] = r.real;
        out["size"] = size;
        out["n"] = n;
        RenderOptions ro;
        ro.tile = r.tile > 0 ? r.tile : kRenderTile;
        if (set_metrics) {
            ImageSet real(want.swd, net, device, size, size);
            read_folder(real_paths, size, real, progress);
            out["n_real"] = real.count();
            ojson scales = ojson::array();
            for (int64_t scale : r.scales) {
                ImageSet fake(want.swd, net, device, size, size);
                for (int64_t seed = 0; seed < n; ++seed) {
                    const auto m =
                        StyledGenerator::for_seed(model->generator, device, uint64_t(seed));
                    ro.fields.seed = uint64_t(seed);
                    fake.add(render_scaleinv(*m, ro, size, scale));
                    progress.step(scale * scale);
                }
                ojson entry;
                entry["scale"] = scale;
                compare(want, fake, real, r, entry);
                scales.push_back(entry);
            }
            // Top-level numbers: the first scale's (1x in the usual --scales 1,2,4,8).
            for (const char* key : {"swd", "fid", "kid"})
                if (scales[0].contains(key)) out[key] = scales[0][key];
            out["scales"] = scales;
        }
        if (want.seam) {
            const int64_t up = CanvasGeometry(gc).upscale();
            const int64_t tile = r.seam_tile > 0 ? r.seam_tile : 4 * up;
            // At least the training size and 4 x 4 whole tiles, with its origin on the latent
            // lattice (phase 0).
            const int64_t side = (std::max(size, 4 * tile) + tile - 1) / tile * tile;
            const Rect rect{0, -floor_div(side / 2, up) * up, side, side};
            double max_diff = 0;
            BoundaryGradients tiled, naive;
            for (int64_t seed = 0; seed < seam_seeds; ++seed) {
                const auto m = StyledGenerator::for_seed(model->generator, device, uint64_t(seed));
                ro.fields.seed = uint64_t(seed);
                const auto s = seam_score(*m, rect, tile, ro);
                max_diff = std::max(max_diff, s.max_abs_diff);
                tiled.boundary += s.tiled.boundary / double(seam_seeds);
                tiled.inside += s.tiled.inside / double(seam_seeds);
                naive.boundary += s.naive.boundary / double(seam_seeds);
                naive.inside += s.naive.inside / double(seam_seeds);
                progress.step(kSeamSeedWork);
            }
            ojson seam;
            seam["tile"] = tile;
            seam["width"] = side;
            seam["height"] = side;
            seam["seeds"] = seam_seeds;
            seam["max_abs_diff"] = max_diff;
            seam["gradient_ratio"] = tiled.inside > 0 ? tiled.boundary / tiled.inside : 0.0;
            seam["gradient_boundary"] = tiled.boundary;
            seam["gradient_inside"] = tiled.inside;
            seam["naive_gradient_ratio"] = naive.inside > 0 ? naive.boundary / naive.inside : 0.0;
            out["seam"] = seam;
        }
    }
    if (want.swd) out["swd_parameters"] = swd_parameters();
    out["seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out.dump();
}

}  // namespace igan
