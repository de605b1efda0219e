// `igan train` (include/igan/train.h): the trainer plus everything around it: resume,
// checkpoints (kept K), the JSONL log, sample grids at fixed latents, and a plot of the loss
// curves.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "features/mobilenet_v2.h"
#include "igan/train.h"
#include "igan/version.h"
#include "io/atomic_file.h"
#include "io/hash.h"
#include "io/png.h"
#include "render/renderer.h"
#include "render/styled_generator.h"
#include "train/trainer.h"
#include "weights/model_file.h"

namespace igan {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSampleSeeds = 8;

std::string step_name(int64_t step) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "step-%08lld", (long long)step);
    return buf;
}

// Row 1: single patches at fixed seeds; row 2: a seamless strip of the canvas of seed 0.
void write_samples(Generator g, const std::string& path) {
    torch::NoGradGuard no_grad;
    const auto& c = g->config;
    const torch::Device device = g->parameters().front().device();  // the run's: CPU or CUDA
    const int64_t p = c.patch_size(), w = kSampleSeeds * p;
    auto grid = torch::empty({3, 3 * p, w});
    RenderOptions o;
    o.tile = p;
    o.batch = 4;
    for (int s = 0; s < kSampleSeeds; ++s) {
        auto model = StyledGenerator::for_seed(g, device, uint64_t(s));
        o.fields.seed = uint64_t(s);
        grid.narrow(1, 0, p).narrow(2, s * p, p).copy_(render_region(*model, {0, -p / 2, p, p}, o));
    }
    auto model = StyledGenerator::for_seed(g, device, 0);
    o.fields.seed = 0;
    grid.narrow(1, p, 2 * p).copy_(render_region(*model, {0, -p, w, 2 * p}, o));
    std::vector<uint8_t> rgb(size_t(3 * w * 3 * p));
    quantize_into(grid, rgb.data(), 3 * w, 0);
    PngWriter png(path, w, 3 * p, {{"Software", "igan " + version_string()}});
    png.write_rows(rgb.data(), 3 * p);
    png.finish();
}

// Small multiples of the logged curves (moving average over 20 records) as one SVG.
void write_plot(const std::string& log_path, const std::string& svg_path) {
    const std::vector<std::string> keys = {"d_loss",    "g_loss", "ac_real",          "ac_fake",
                                           "diversity", "r1",     "path_length_mean", "it_per_s",
                                           "augment_p", "ada_rt"};
    std::map<std::string, std::vector<std::pair<double, double>>> series;
    std::ifstream in(log_path);
    std::string line;
    while (std::getline(in, line)) {
        try {
            const auto j = nlohmann::json::parse(line);
            for (const auto& k : keys)
                if (j.contains(k) && j[k].is_number())
                    series[k].emplace_back(j["step"].get<double>(), j[k].get<double>());
        } catch (const nlohmann::json::exception&) {
        }
    }
    const int cw = 300, ch = 170, cols = 4;
    std::ostringstream svg;
    svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << cw * cols << "' height='"
        << ch * ((keys.size() + cols - 1) / cols) << "' font-family='sans-serif' font-size='11'>\n"
        << "<rect width='100%' height='100%' fill='white'/>\n";
    for (size_t i = 0; i < keys.size(); ++i) {
        const int ox = int(i % cols) * cw, oy = int(i / cols) * ch;
        const auto& pts = series[keys[i]];
        svg << "<text x='" << ox + 8 << "' y='" << oy + 14 << "'>" << keys[i] << "</text>\n";
        if (pts.size() < 2) continue;
        std::vector<double> smooth;
        double acc = 0;
        for (size_t k = 0; k < pts.size(); ++k) {
            acc += pts[k].second;
            if (k >= 20) acc -= pts[k - 20].second;
            smooth.push_back(acc / double(std::min<size_t>(k + 1, 20)));
        }
        const double x0 = pts.front().first, x1 = std::max(pts.back().first, x0 + 1);
        const double y0 = *std::min_element(smooth.begin(), smooth.end());
        const double y1 = std::max(*std::max_element(smooth.begin(), smooth.end()), y0 + 1e-9);
        svg << "<text x='" << ox + 8 << "' y='" << oy + 28 << "' fill='#666'>" << y1 << "</text>"
            << "<text x='" << ox + 8 << "' y='" << oy + ch - 8 << "' fill='#666'>" << y0
            << " (steps " << x0 << "-" << x1 << ")</text>\n<polyline fill='none' stroke='#1f77b4' points='";
        for (size_t k = 0; k < pts.size(); ++k)
            svg << ox + 10 + (pts[k].first - x0) / (x1 - x0) * (cw - 20) << ","
                << oy + ch - 20 - (smooth[k] - y0) / (y1 - y0) * (ch - 55) << " ";
        svg << "'/>\n";
    }
    svg << "</svg>\n";
    const std::string text = svg.str();
    AtomicFile file(svg_path);
    file.write(text.data(), text.size());
    file.commit();
}

void prune_checkpoints(const fs::path& root, int keep) {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(root)) {
        const auto name = e.path().filename().string();
        if (name.rfind("step-", 0) == 0 && name.find(".tmp") == std::string::npos) dirs.push_back(e.path());
    }
    std::sort(dirs.begin(), dirs.end());
    for (size_t i = 0; i + size_t(std::max(1, keep)) < dirs.size(); ++i) fs::remove_all(dirs[i]);
}

}  // namespace

TrainResult run_train(const TrainRequest& r, const ProgressFn& progress, const volatile bool* stop) {
    if (r.out.empty()) throw UsageError("train needs --out RUN_DIR");
    if (r.data.empty()) throw UsageError("train needs --data FOLDER");
    if (r.iters < 0) throw UsageError("--iters must be >= 0");
    if (r.checkpoint_every < 1 || r.sample_every < 1 || r.log_every < 1)
        throw UsageError("--checkpoint-every, --sample-every and --log-every must be >= 1");
    if (r.diversity != "paper" && r.diversity != "angular")
        throw UsageError("--diversity must be paper or angular");
    if (!r.augment.empty()) parse_augment_mode(r.augment);
    if (!(r.augment_p >= 0 && r.augment_p <= 1)) throw UsageError("--augment-p must be in [0, 1]");
    if (!(r.ada_target > 0 && r.ada_target < 1)) throw UsageError("--ada-target must be in (0, 1)");
    if (!(r.ada_kimg > 0)) throw UsageError("--ada-kimg must be > 0");
    if (!(r.r1 <= 1e4)) throw UsageError("--r1 must be at most 10000");
    if (!(r.position_weight >= 0 && r.position_weight <= 100))
        throw UsageError("--position-weight must be in [0, 100]");
    if (!r.discriminator.empty()) parse_discriminator_kind(r.discriminator);
    const fs::path run(r.out);
    const bool main_rank = r.rank == 0;
    std::string resume_from;
    if (r.resume) {
        resume_from = latest_checkpoint(r.out);
        if (resume_from.empty())
            throw UsageError("--resume: no checkpoint in " + r.out + "/checkpoints; drop --resume to start");
    }
    // A checkpoint folder starts G and G_ema from its two files, a model file both from itself.
    std::string init_g, init_g_ema;
    if (!r.init.empty()) {
        if (r.resume) throw UsageError("--init starts a new run and --resume continues one: give one of them");
        if (!latest_checkpoint(r.out).empty())
            throw UsageError("--init: " + r.out + " already has checkpoints; choose an empty --out");
        const bool folder = fs::is_directory(r.init);
        init_g = folder ? (fs::path(r.init) / "G.safetensors").string() : r.init;
        init_g_ema = folder ? (fs::path(r.init) / "G_ema.safetensors").string() : r.init;
        if (!fs::is_regular_file(init_g) || !fs::is_regular_file(init_g_ema))
            throw UsageError("--init: " + r.init +
                             " is neither a model file nor a checkpoint folder with G.safetensors "
                             "and G_ema.safetensors");
    }
    TrainOptions o;
    o.model = !resume_from.empty() ? load_generator(resume_from + "/G.safetensors").config
              : !init_g.empty()    ? load_generator(init_g).config
                                   : load_model_config(r.config);
    o.init = r.init.empty() ? "" : r.init + " (sha256 " + sha256_file(init_g_ema) + ")";
    o.data.folder = r.data;
    o.data.full_size = o.model.generator.full_size;
    o.data.patch_size = o.model.generator.patch_size();
    o.data.max_scale = r.max_scale;
    o.data.seed = r.seed;
    if (!(r.lr > 0 && r.lr <= 1)) throw UsageError("--lr must be in (0, 1]");
    o.lr = r.lr;
    o.batch = r.batch;
    o.iters = r.iters;
    o.discriminator = parse_discriminator_kind(
        !r.discriminator.empty() ? r.discriminator
        : resume_from.empty()    ? std::string("stylegan2")
                                 : checkpoint_discriminator_kind(resume_from));
    // R1 regularises a pixel-space D; the projected one has none by default.
    o.r1 = r.r1 >= 0 ? r.r1 : o.discriminator == DiscriminatorKind::kProjected ? 0.0 : 10.0;
    if (o.discriminator != DiscriminatorKind::kStyleGan2) {
        o.features = load_mobilenet_v2(r.features);
        o.features_sha256 = sha256_file(r.features);
    }
    o.seed = r.seed;
    o.device = r.device;
    o.diversity = r.diversity == "paper" ? DiversityForm::kPaper : DiversityForm::kAngular;
    o.coord_ac_w = r.position_weight;
    o.augment = parse_augment_mode(!r.augment.empty()      ? r.augment
                                   : resume_from.empty() ? std::string("ada")
                                                         : checkpoint_augment_mode(resume_from));
    o.augment_p = r.augment_p;
    o.ada.target = r.ada_target;
    o.ada.kimg = r.ada_kimg;
    o.rank = r.rank;
    o.world_size = r.world_size;
    o.master_addr = r.master_addr;
    o.master_port = r.master_port;
    // The minibatch-stddev group must divide the per-process batch.
    o.model.discriminator.stddev_group = int(std::min<int64_t>(o.model.discriminator.stddev_group, r.batch));
    while (r.batch % o.model.discriminator.stddev_group != 0) --o.model.discriminator.stddev_group;

    Trainer trainer(o);
    if (!resume_from.empty()) trainer.load_checkpoint(resume_from);
    if (!resume_from.empty() && !trainer.moments_restored() && main_rank)
        std::fprintf(stderr, "note: %s has no Adam moments (optim_*.pt); they start at zero\n",
                     resume_from.c_str());
    if (!init_g.empty()) trainer.init_generators(init_g, init_g_ema);
    if (main_rank) fs::create_directories(run / "checkpoints"), fs::create_directories(run / "samples");

    const auto start = Clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    std::ofstream log;
    if (main_rank) log.open(run / "log.jsonl", std::ios::app);
    const int64_t first = trainer.current_step();
    auto checkpoint = [&] {
        const auto dir = (run / "checkpoints" / step_name(trainer.current_step())).string();
        if (main_rank) {
            trainer.save_checkpoint(dir);
            prune_checkpoints(run / "checkpoints", r.keep);
            write_plot((run / "log.jsonl").string(), (run / "losses.svg").string());
        }
        return dir;
    };
    TrainResult result;
    double window_start = elapsed();
    int64_t window_steps = 0;
    while (trainer.current_step() < r.iters && !(stop && *stop)) {
        trainer.step();
        ++window_steps;
        const auto& s = trainer.last_stats();
        const int64_t done = trainer.current_step();
        if (main_rank && (done % r.log_every == 0 || done == r.iters)) {
            const double now = elapsed();
            nlohmann::json j = {{"step", s.step},        {"d_loss", s.d_loss},
                                {"g_loss", s.g_loss},    {"d_real", s.d_real},
                                {"d_fake", s.d_fake},    {"ac_real", s.ac_real},
                                {"ac_fake", s.ac_fake},  {"diversity", s.diversity},
                                {"it_per_s", window_steps / std::max(1e-9, now - window_start)},
                                {"wall_s", now}};
            if (s.did_r1) j["r1"] = s.r1;
            if (s.did_path) j["path"] = s.path, j["path_length_mean"] = s.path_length_mean;
            if (o.augment == AugmentMode::kAda) j["augment_p"] = s.augment_p, j["ada_rt"] = s.ada_rt;
            log << j.dump() << "\n" << std::flush;
            window_start = now;
            window_steps = 0;
        }
        if (main_rank && done % r.sample_every == 0)
            write_samples(trainer.generator_ema(),
                          (run / "samples" / (step_name(done) + ".png")).string());
        if (done % r.checkpoint_every == 0 && done < r.iters) checkpoint();
        if (progress) progress({done - first, r.iters - first, elapsed(), ""});
    }
    result.interrupted = stop && *stop && trainer.current_step() < r.iters;
    result.checkpoint = checkpoint();
    result.step = trainer.current_step();
    result.seconds = elapsed();
    return result;
}

}  // namespace igan
