// `igan eval`: SWD, FID/KID, the MobileNetV2 and InceptionV3-mixed5 feature distances, their
// ScaleInv variants and the seam score (docs/evaluation.md), each with a bootstrap spread, for
// three rows: the model (or a folder of fakes), a random model of the same config and the floor
// (training photos against the real photos). The metrics have their own files beside this one;
// this file samples the sets, renders, and assembles the JSON.
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/device.h"
#include "core/error.h"
#include "igan/eval.h"
#include "core/rng.h"
#include "core/threads.h"
#include "eval/bootstrap.h"
#include "eval/crops.h"
#include "eval/fid.h"
#include "eval/images.h"
#include "eval/incv3m5_features.h"
#include "eval/inception.h"
#include "eval/mnv2_features.h"
#include "eval/scaleinv.h"
#include "eval/seam.h"
#include "eval/swd.h"
#include "model/precision.h"
#include "render/canvas.h"
#include "render/renderer.h"
#include "render/styled_generator.h"
#include "weights/model_file.h"

namespace igan {

namespace {

using ojson = nlohmann::ordered_json;

constexpr int64_t kRenderTile = 256;
constexpr int64_t kFeatureBatch = 8;
constexpr int64_t kMaxSeamSeeds = 2;
constexpr int64_t kSeamSeedWork = 12;
constexpr int64_t kMaxScale = 64;
constexpr int64_t kMaxBootstrap = 10000;
constexpr int64_t kMaxTile = 4096;  // Engine's limit (igan.h; api sits above eval)
constexpr int64_t kCompareWorkDivisor = 8;  // a set comparison costs about n / 8 renders
constexpr uint64_t kBootstrapSalt = 0xB0075D4Aull;

class Progressor {
public:
    Progressor(const ProgressFn& fn, int64_t total) : fn_(fn), total_(total) {}
    void step(int64_t work = 1) {
        done_ += work;
        if (fn_)
            fn_({done_, total_,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(),
                 ""});
    }

private:
    const ProgressFn& fn_;
    int64_t total_, done_ = 0;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// A feature network: (N, 3, H, W) in [-1, 1] -> (N, D) features, on CPU.
using FeatureNet = std::function<torch::Tensor(const torch::Tensor&)>;

// What the requested metrics need from one image set, gathered one image at a time, in order
// (bootstrap draws count the images in the order they were added).
class ImageSet {
public:
    ImageSet(bool want_swd, const std::map<std::string, FeatureNet>& nets, int64_t h, int64_t w)
        : nets_(nets), h_(h), w_(w) {
        if (want_swd) swd_.emplace(SwdConfig{}, h, w);
    }
    int64_t height() const { return h_; }
    int64_t width() const { return w_; }
    int64_t count() const { return count_; }
    const Strata& strata() const { return strata_; }

    // `stratum`: the photo a crop comes from (bootstrap.h); 0 for independent samples.
    void add(const torch::Tensor& image, int64_t stratum = 0) {
        strata_.push_back(stratum);
        if (swd_) swd_->add(image);
        if (!nets_.empty()) {
            pending_.push_back(image);
            if (int64_t(pending_.size()) == kFeatureBatch) flush();
        }
        ++count_;
    }
    const SwdDescriptors& swd() const { return *swd_; }
    torch::Tensor features(const std::string& net) {
        flush();
        return torch::cat(features_.at(net));
    }

private:
    void flush() {
        if (pending_.empty()) return;
        torch::NoGradGuard no_grad;
        const auto batch = torch::stack(pending_);
        for (const auto& [name, net] : nets_) features_[name].push_back(net(batch));
        pending_.clear();
    }

    std::optional<SwdDescriptors> swd_;
    const std::map<std::string, FeatureNet>& nets_;
    int64_t h_, w_, count_ = 0;
    Strata strata_;
    std::vector<torch::Tensor> pending_;
    std::map<std::string, std::vector<torch::Tensor>> features_;
};

// What every metric may read besides its two sets.
struct EvalContext {
    const EvalRequest& request;
    int threads;  // the cores the run may use (the calling thread itself runs on one)
};

// A set-vs-set metric: its values over paired bootstrap draws of the real and fake sets
// (draws[0]: the full sets), plus whatever it reports about the full sets into `extra`.
// Adding a metric is one row of set_metrics() (and its network in run_eval, if it needs one).
using MetricValues = std::function<std::vector<double>(
    ImageSet& real, ImageSet& fake, const std::vector<Draw>& real_draws,
    const std::vector<Draw>& fake_draws, const EvalContext& context, ojson& extra)>;
struct SetMetricDef {
    std::string name;
    std::string network;  // feature network it reads ("" = none)
    MetricValues values;
};

std::vector<double> swd_values(ImageSet& real, ImageSet& fake, const std::vector<Draw>& dr,
                               const std::vector<Draw>& df, const EvalContext& c, ojson& extra) {
    const auto results = swd_draws(fake.swd(), real.swd(), df, dr, c.threads);
    extra["swd_levels"] = results[0].levels;
    extra["swd_resolutions"] = results[0].resolutions;
    std::vector<double> means;
    for (const auto& r : results) means.push_back(r.mean);
    return means;
}

// The rows of `features` that a draw picks.
torch::Tensor pick(const torch::Tensor& features, const Draw& draw) {
    return features.index_select(0, draw_indices(draw));
}

// Fréchet distance and KID-style kernel distance of a feature network's features.
MetricValues frechet_values(const std::string& network) {
    return [network](ImageSet& real, ImageSet& fake, const std::vector<Draw>& dr,
                     const std::vector<Draw>& df, const EvalContext&, ojson&) {
        const auto fr = real.features(network), ff = fake.features(network);
        return per_draw([&](const Draw& r, const Draw& f) {
            return frechet_distance(gaussian_stats(pick(ff, f)), gaussian_stats(pick(fr, r)));
        })(dr, df);
    };
}

MetricValues kernel_values(const std::string& network) {
    return [network](ImageSet& real, ImageSet& fake, const std::vector<Draw>& dr,
                     const std::vector<Draw>& df, const EvalContext& c, ojson& extra) {
        const auto fr = real.features(network), ff = fake.features(network);
        return per_draw([&](const Draw& r, const Draw& f) {
            const auto k = kernel_inception_distance(
                pick(ff, f), pick(fr, r), c.request.kid_subsets, c.request.kid_subset_size);
            extra["kid_subset_size"] = k.subset_size;
            return k.mean;
        })(dr, df);
    };
}

const std::vector<SetMetricDef>& set_metrics() {
    static const std::vector<SetMetricDef> table = {
        {"swd", "", swd_values},
        {"fid", "inception", frechet_values("inception")},
        {"kid", "inception", kernel_values("inception")},
        {"fd-mnv2", "mnv2", frechet_values("mnv2")},
        {"kd-mnv2", "mnv2", kernel_values("mnv2")},
        {"fd-incv3m5", "incv3m5", frechet_values("incv3m5")},
        {"kd-incv3m5", "incv3m5", kernel_values("incv3m5")},
    };
    return table;
}

// Model-only metrics, outside the set comparisons.
const std::vector<std::string> kModelMetrics = {"seam"};

std::vector<std::string> all_metric_names() {
    std::vector<std::string> names;
    for (const auto& m : set_metrics()) names.push_back(m.name);
    names.insert(names.end(), kModelMetrics.begin(), kModelMetrics.end());
    return names;
}

struct Wanted {
    std::vector<const SetMetricDef*> set;  // in table order
    bool seam = false;
    bool swd() const {
        return std::any_of(set.begin(), set.end(), [](auto* m) { return m->name == "swd"; });
    }
    bool needs(const std::string& network) const {
        return std::any_of(set.begin(), set.end(), [&](auto* m) { return m->network == network; });
    }
};

Wanted parse_metrics(const std::vector<std::string>& metrics) {
    std::string names;
    for (const auto& n : all_metric_names()) names += (names.empty() ? "" : ", ") + n;
    if (metrics.empty()) throw UsageError("--metrics is empty: use " + names);
    Wanted w;
    for (const auto& m : metrics) {
        if (m == "seam") {
            w.seam = true;
            continue;
        }
        const auto& table = set_metrics();
        const auto it =
            std::find_if(table.begin(), table.end(), [&](const auto& d) { return d.name == m; });
        if (it == table.end()) throw UsageError("unknown metric '" + m + "': use " + names);
        if (std::find(w.set.begin(), w.set.end(), &*it) == w.set.end()) w.set.push_back(&*it);
    }
    std::sort(w.set.begin(), w.set.end());  // table order
    return w;
}

std::string size_str(const torch::Tensor& img) {
    return std::to_string(img.size(2)) + "x" + std::to_string(img.size(1));
}

// Every image of a folder into `set`, one per image. resize > 0: the centred square, resized;
// otherwise every image must already have the set's size.
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
                             "crop all of them to S x S)");
        }
        set.add(img);
        progress.step();
    }
}

// `count` random crops of a folder's photos into `set`: crop j comes from photo j mod n, so
// every photo gives count / n of them (K each when count = K n) and is a bootstrap stratum.
// Each photo is decoded once.
void read_crops(const std::vector<std::string>& paths, int64_t count, const CropSampling& sampling,
                ImageSet& set, Progressor& progress) {
    const int64_t n = int64_t(paths.size());
    for (int64_t i = 0; i < n; ++i) {
        if (i < count) {
            const auto photo = prepare_photo(load_image_tensor(paths[size_t(i)]), sampling);
            const uint64_t key = photo_key(paths[size_t(i)]);
            for (int64_t j = i; j < count; j += n)
                set.add(sample_crop(photo, sampling, key, j / n), i);
        }
        progress.step();
    }
}

// Reads a real-photo set of `count` images (0 = one per photo, or K per photo when cropping).
void read_real(const std::vector<std::string>& paths, const EvalRequest& r, int64_t size,
               int64_t count, ImageSet& set, Progressor& progress) {
    if (r.crops_per_image == 0 || size == 0) return read_folder(paths, size, set, progress);
    CropSampling s;
    s.size = size;
    s.max_scale = r.max_scale;
    s.seed = r.sample_seed;
    read_crops(paths, count > 0 ? count : r.crops_per_image * int64_t(paths.size()), s, set,
               progress);
}

// Every wanted set metric of (real, fake) with its spread: `name`, `name_std`, and extras.
ojson compare(const Wanted& want, ImageSet& real, ImageSet& fake, const EvalContext& c,
              Progressor& progress) {
    const EvalRequest& r = c.request;
    ojson out;
    for (const auto* m : want.set) {
        ojson extra = ojson::object();  // update() rejects null: fid and fd-mnv2 add nothing
        const auto e = bootstrap(
            [&](const std::vector<Draw>& dr, const std::vector<Draw>& df) {
                return m->values(real, fake, dr, df, c, extra);
            },
            real.strata(), fake.strata(), r.bootstrap, r.sample_seed ^ kBootstrapSalt);
        out[m->name] = e.value;
        if (r.bootstrap > 0) out[m->name + "_std"] = e.std;
        out.update(extra);
    }
    progress.step(std::max<int64_t>(1, fake.count() / kCompareWorkDivisor));
    return out;
}

// Ratios of a row's metrics to the floor's.
void add_ratios(const Wanted& want, const ojson& floor, ojson& row) {
    for (const auto* m : want.set)
        if (floor.contains(m->name) && floor[m->name].get<double>() > 0)
            row[m->name + "_ratio"] = row[m->name].get<double>() / floor[m->name].get<double>();
}

// The canvas seed of generated sample i.
uint64_t sample_canvas_seed(const EvalRequest& r, int64_t i) {
    return (r.sample_seed << 32) + uint64_t(i);
}

// n ScaleInv samples of a generator into `set`, rendered `threads` at once, each on one thread
// (small convolutions scale far better across samples than inside one), added in seed order.
void render_samples(const Generator& g, torch::Device device, const EvalContext& c, int64_t n,
                    int64_t size, int64_t scale, ImageSet& set, Progressor& progress) {
    const EvalRequest& r = c.request;
    RenderOptions ro;
    ro.tile = r.tile > 0 ? r.tile : kRenderTile;
    ro.workers = 1;
    ro.precision = parse_precision(r.precision);
    auto render = [&](int64_t i) {
        const auto m = StyledGenerator::for_seed(g, device, sample_canvas_seed(r, i));
        RenderOptions o = ro;
        o.fields.seed = sample_canvas_seed(r, i);
        return render_scaleinv(*m, o, size, scale);
    };
    const int64_t workers = device.is_cuda() ? 1 : std::max(1, c.threads);
    if (workers == 1) {
        IntraOpThreadsScope all(c.threads);
        for (int64_t i = 0; i < n; ++i) {
            set.add(render(i));
            progress.step(scale * scale);
        }
        return;
    }
    std::exception_ptr error;
    for (int64_t i0 = 0; i0 < n && !error; i0 += workers) {
        const int64_t count = std::min(workers, n - i0);
        std::vector<torch::Tensor> out(static_cast<size_t>(count));
        std::vector<std::exception_ptr> errors(static_cast<size_t>(count));
        std::vector<std::thread> pool;
        for (int64_t k = 0; k < count; ++k)
            pool.emplace_back([&, k] {
                set_this_thread_intra_op_threads(1);
                torch::NoGradGuard no_grad;
                try {
                    out[size_t(k)] = render(i0 + k);
                } catch (...) {
                    errors[size_t(k)] = std::current_exception();
                }
            });
        for (auto& t : pool) t.join();
        for (int64_t k = 0; k < count && !error; ++k) {
            if (errors[size_t(k)]) {
                error = errors[size_t(k)];
                break;
            }
            set.add(out[size_t(k)]);
            progress.step(scale * scale);
        }
    }
    if (error) std::rethrow_exception(error);
}

// One row per scale for a generator: its samples against the real set.
ojson generator_scales(const Generator& g, torch::Device device, const Wanted& want,
                       const std::map<std::string, FeatureNet>& nets, ImageSet& real,
                       const std::optional<ojson>& floor, const EvalContext& c, int64_t n,
                       int64_t size, Progressor& progress) {
    ojson scales = ojson::array();
    for (int64_t scale : c.request.scales) {
        ImageSet fake(want.swd(), nets, size, size);
        render_samples(g, device, c, n, size, scale, fake, progress);
        ojson entry;
        entry["scale"] = scale;
        entry.update(compare(want, real, fake, c, progress));
        if (floor) add_ratios(want, *floor, entry);
        scales.push_back(entry);
    }
    return scales;
}

ojson sampling_json(const EvalRequest& r, bool cropping) {
    ojson s;
    s["crops_per_image"] = cropping ? r.crops_per_image : 0;
    if (cropping) {
        s["max_scale"] = r.max_scale;
        s["flip"] = true;
    }
    s["sample_seed"] = r.sample_seed;
    return s;
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

ojson seam_json(const LoadedGenerator& model, torch::Device device, const EvalRequest& r,
                int64_t seeds, Progressor& progress) {
    const GeneratorConfig& gc = model.config.generator;
    const int64_t up = CanvasGeometry(gc).upscale();
    const int64_t tile = r.seam_tile > 0 ? r.seam_tile : 4 * up;
    // At least the training size and 4 x 4 whole tiles, with its origin on the latent lattice
    // (phase 0).
    const int64_t side = (std::max<int64_t>(gc.full_size, 4 * tile) + tile - 1) / tile * tile;
    const Rect rect{0, -floor_div(side / 2, up) * up, side, side};
    RenderOptions ro;
    ro.tile = r.tile > 0 ? r.tile : kRenderTile;
    ro.precision = parse_precision(r.precision);
    double max_diff = 0;
    BoundaryGradients tiled, naive;
    for (int64_t seed = 0; seed < seeds; ++seed) {
        const auto m = StyledGenerator::for_seed(model.generator, device, uint64_t(seed));
        ro.fields.seed = uint64_t(seed);
        const auto s = seam_score(*m, rect, tile, ro);
        max_diff = std::max(max_diff, s.max_abs_diff);
        tiled.boundary += s.tiled.boundary / double(seeds);
        tiled.inside += s.tiled.inside / double(seeds);
        naive.boundary += s.naive.boundary / double(seeds);
        naive.inside += s.naive.inside / double(seeds);
        progress.step(kSeamSeedWork);
    }
    ojson seam;
    seam["tile"] = tile;
    seam["width"] = side;
    seam["height"] = side;
    seam["seeds"] = seeds;
    seam["max_abs_diff"] = max_diff;
    seam["gradient_ratio"] = tiled.inside > 0 ? tiled.boundary / tiled.inside : 0.0;
    seam["gradient_boundary"] = tiled.boundary;
    seam["gradient_inside"] = tiled.inside;
    seam["naive_gradient_ratio"] = naive.inside > 0 ? naive.boundary / naive.inside : 0.0;
    return seam;
}

}  // namespace

std::vector<std::string> eval_metric_names() { return all_metric_names(); }

void validate_eval_request(const EvalRequest& r) {
    const Wanted want = parse_metrics(r.metrics);
    if (r.model.empty() == r.fake.empty())
        throw UsageError("eval needs exactly one of --model (generate the samples) or --fake DIR");
    if (r.real.empty()) throw UsageError("eval needs --real DIR");
    if (want.needs("inception") && r.inception.empty())
        throw UsageError(
            "fid and kid need --inception W.safetensors (pytorch-fid InceptionV3 "
            "weights; docs/evaluation.md shows the conversion)");
    if (want.seam && r.model.empty())
        throw UsageError("the seam score renders tiles itself: it needs --model");
    if (r.scales.empty()) throw UsageError("--scales is empty");
    parse_precision(r.precision);
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
    if (r.crops_per_image < 0) throw UsageError("--crops-per-image must be >= 0");
    if (!(r.max_scale >= 1 && r.max_scale <= 16))
        throw UsageError("--max-scale must be in [1, 16]");
    if (r.bootstrap < 0 || r.bootstrap > kMaxBootstrap)
        throw UsageError("--bootstrap must be in [0, " + std::to_string(kMaxBootstrap) + "]");
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
    const Precision precision = parse_precision(r.precision);
    check_precision(precision, device);
    if (device.is_cuda()) use_cuda_math(precision);
    torch::NoGradGuard no_grad;
    // The heavy parts (rendering, SWD) run on worker threads of one intra-op thread each; this
    // thread's many small operators run on one, so that no idle OpenMP team spins beside them.
    const EvalContext context{r, at::get_num_threads()};
    const IntraOpThreadsScope one_thread(1);
    set_blas_threads(1);
    struct BlasRestore {
        int threads;
        ~BlasRestore() { set_blas_threads(threads); }
    } blas_restore{context.threads};

    // Everything that can fail fast does so before the long part.
    const auto real_paths = list_images(r.real);
    std::vector<std::string> fake_paths, floor_paths;
    if (!r.fake.empty()) fake_paths = list_images(r.fake);
    if (!r.floor.empty()) floor_paths = list_images(r.floor);
    std::optional<LoadedGenerator> model;
    if (!r.model.empty()) {
        model = load_generator(r.model, r.config_override);
        model->generator->to(device);
        model->generator->eval();
    }
    // The wanted feature networks, loaded now (a missing file fails before the long part); each
    // runs on all the run's threads.
    std::map<std::string, FeatureNet> nets;
    auto add_net = [&nets, &context](const std::string& name, FeatureNet net) {
        nets[name] = [net, &context](const torch::Tensor& batch) {
            const IntraOpThreadsScope all(context.threads);
            return net(batch);
        };
    };
    if (want.needs("inception")) {
        auto net = load_inception(r.inception, device);
        add_net("inception", [net, device](const torch::Tensor& batch) mutable {
            return net->forward(batch.to(device)).cpu();
        });
    }
    if (want.needs("mnv2")) {
        const auto net = load_mobilenet_v2(r.features, device);
        add_net("mnv2", [net](const torch::Tensor& batch) { return mnv2_descriptors(net, batch); });
    }
    if (want.needs("incv3m5")) {
        const auto net = load_inception_v3_mixed5(r.incv3_features, device);
        add_net("incv3m5",
                [net](const torch::Tensor& batch) { return incv3m5_descriptors(net, batch); });
    }

    ojson out;
    out["mode"] = model ? "model" : "folders";
    out["metrics"] = r.metrics;
    const bool set_metrics = !want.set.empty();
    std::optional<ojson> floor;

    if (!model) {
        // Folder mode: the first real image fixes the size unless --size crops everything.
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
                                 ") differ in size; pass --size S to crop both to S x S");
        }
        const bool cropping = r.size > 0 && r.crops_per_image > 0;
        const int64_t n_real =
            cropping ? r.crops_per_image * int64_t(real_paths.size()) : int64_t(real_paths.size());
        const int64_t n_fake = r.n > 0 ? r.n : n_real;
        Progressor progress(on_progress,
                            int64_t(real_paths.size() + fake_paths.size() + floor_paths.size()) +
                                2 * std::max<int64_t>(1, n_fake / kCompareWorkDivisor));
        ImageSet real(want.swd(), nets, h, w), fake(want.swd(), nets, h, w);
        read_real(real_paths, r, r.size, 0, real, progress);
        read_real(fake_paths, r, r.size, cropping ? n_fake : 0, fake, progress);
        out["fake"] = r.fake;
        out["real"] = r.real;
        out["n_fake"] = fake.count();
        out["n_real"] = real.count();
        out["width"] = w;
        out["height"] = h;
        out["sampling"] = sampling_json(r, cropping);
        out["bootstrap"] = r.bootstrap;
        if (!floor_paths.empty()) {
            ImageSet train(want.swd(), nets, h, w);
            read_real(floor_paths, r, r.size, cropping ? n_fake : 0, train, progress);
            floor = ojson{{"folder", r.floor}, {"n", train.count()}};
            floor->update(compare(want, real, train, context, progress));
        }
        auto row = compare(want, real, fake, context, progress);
        if (floor) add_ratios(want, *floor, row);
        out.update(row);
        if (floor) out["floor"] = *floor;
    } else {
        const GeneratorConfig& gc = model->config.generator;
        const int64_t size = gc.full_size;
        const bool cropping = r.crops_per_image > 0;
        const int64_t n_real =
            cropping ? r.crops_per_image * int64_t(real_paths.size()) : int64_t(real_paths.size());
        const int64_t n = r.n > 0 ? r.n : n_real;
        const int64_t seam_seeds = want.seam ? std::min(n, kMaxSeamSeeds) : 0;
        // Work units: one per photo read and per training-size image generated (a sample at
        // scale s costs s^2), a seam seed about three renders of a 4 x 4-tile square (~4 units
        // each, with the tiles' margins), a comparison about n / 8.
        int64_t total = kSeamSeedWork * seam_seeds;
        if (set_metrics) {
            const int64_t compare_work = std::max<int64_t>(1, n / kCompareWorkDivisor);
            total += int64_t(real_paths.size() + floor_paths.size());
            if (!floor_paths.empty()) total += compare_work;
            for (int64_t scale : r.scales) total += 2 * (n * scale * scale + compare_work);
        }
        Progressor progress(on_progress, total);

        out["model"] = r.model;
        out["model_config"] = model->config.name;
        if (r.precision != "fp32") out["precision"] = r.precision;
        out["real"] = r.real;
        out["size"] = size;
        out["n"] = n;
        if (set_metrics) {
            ImageSet real(want.swd(), nets, size, size);
            read_real(real_paths, r, size, 0, real, progress);
            out["n_real"] = real.count();
            out["sampling"] = sampling_json(r, cropping);
            out["bootstrap"] = r.bootstrap;
            if (!floor_paths.empty()) {
                ImageSet train(want.swd(), nets, size, size);
                read_real(floor_paths, r, size, cropping ? n : 0, train, progress);
                floor = ojson{{"folder", r.floor}, {"n", train.count()}};
                floor->update(compare(want, real, train, context, progress));
            }
            const auto scales = generator_scales(model->generator, device, want, nets, real, floor,
                                                 context, n, size, progress);
            // Top-level numbers: the model's first scale (1x in the usual --scales 1,2,4,8).
            for (const auto& [key, value] : scales[0].items())
                if (key != "scale") out[key] = value;
            out["scales"] = scales;

            // A random model of the same config, as `igan init --seed` makes it.
            torch::manual_seed(r.random_seed);
            Generator random(gc);
            random->to(device);
            random->eval();
            out["random"] = ojson{{"init_seed", r.random_seed},
                                  {"scales", generator_scales(random, device, want, nets, real,
                                                              floor, context, n, size, progress)}};
            if (floor) out["floor"] = *floor;
        }
        if (want.seam) {
            const IntraOpThreadsScope all(context.threads);  // the renderer's own passes
            out["seam"] = seam_json(*model, device, r, seam_seeds, progress);
        }
    }
    if (want.swd()) out["swd_parameters"] = swd_parameters();
    out["seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out.dump();
}

}  // namespace igan
