// `igan eval`: quality metrics of a model or of a folder of images against real images.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "progress.h"

namespace igan::cli {
namespace {

using ojson = nlohmann::ordered_json;

struct EvalArgs {
    EvalRequest request;
    bool json = false, quiet = false;
};

// Column header and number format of a set metric.
std::pair<std::string, const char*> metric_format(const std::string& name) {
    if (name == "swd") return {"SWDx1e3", "%.1f"};
    if (name == "fid") return {"FID", "%.2f"};
    if (name == "kid") return {"KID", "%.5f"};
    if (name == "fd-mnv2") return {"FD-MNV2", "%.3f"};
    if (name == "kd-mnv2") return {"KD-MNV2", "%.5f"};
    if (name == "fd-incv3m5") return {"FD-INCV3M5", "%.3f"};
    if (name == "kd-incv3m5") return {"KD-INCV3M5", "%.5f"};
    std::string upper = name;
    for (auto& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    return {upper, "%.4g"};
}

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

// The set metrics of the run, in the order asked.
std::vector<std::string> set_metric_names(const ojson& j) {
    std::vector<std::string> names;
    for (const auto& m : j["metrics"])
        if (m != "seam") names.push_back(m.get<std::string>());
    return names;
}

void print_row(const std::string& label, const std::string& scale, const ojson& row,
               const std::vector<std::string>& metrics, bool ratios) {
    std::printf("%-28s %5s", label.c_str(), scale.c_str());
    for (const auto& m : metrics) {
        const char* f = metric_format(m).second;
        std::string cell = row.contains(m) ? fmt(f, row[m].get<double>()) : "-";
        if (row.contains(m + "_std")) cell += " ± " + fmt(f, row[m + "_std"].get<double>());
        std::printf(" %22s", cell.c_str());
        if (ratios)
            std::printf(" %8s", row.contains(m + "_ratio")
                                    ? fmt("%.2fx", row[m + "_ratio"].get<double>()).c_str()
                                    : "-");
    }
    std::printf("\n");
}

void print_table(const std::string& text) {
    const auto j = ojson::parse(text);
    const bool model = j["mode"] == "model";
    if (model) {
        std::printf("model %s (%s), %lld px, %lld samples per row and scale\n",
                    j["model"].get<std::string>().c_str(),
                    j["model_config"].get<std::string>().c_str(),
                    (long long)j["size"].get<int64_t>(), (long long)j["n"].get<int64_t>());
    } else {
        std::printf("fake %s (%lld images) vs real %s (%lld images), %lldx%lld\n",
                    j["fake"].get<std::string>().c_str(), (long long)j["n_fake"].get<int64_t>(),
                    j["real"].get<std::string>().c_str(), (long long)j["n_real"].get<int64_t>(),
                    (long long)j["width"].get<int64_t>(), (long long)j["height"].get<int64_t>());
    }
    const auto metrics = set_metric_names(j);
    if (!metrics.empty() && j.contains("sampling")) {
        const auto& s = j["sampling"];
        const int64_t k = s["crops_per_image"].get<int64_t>();
        const std::string how = k > 0 ? std::to_string(k) + " random crops per photo (max scale " +
                                            fmt("%.2g", s["max_scale"].get<double>()) +
                                            ", sample seed " +
                                            std::to_string(s["sample_seed"].get<uint64_t>()) + ")"
                                      : "one image per photo";
        const int64_t draws = j["bootstrap"].get<int64_t>();
        std::printf(
            "real: %lld images, %s; %s\n", (long long)j["n_real"].get<int64_t>(), how.c_str(),
            draws > 0 ? ("± = std over " + std::to_string(draws) + " bootstrap draws").c_str()
                      : "no spreads (--bootstrap 0)");
    }
    if (!metrics.empty()) {
        const bool ratios = j.contains("floor");
        std::printf("%-28s %5s", "row", "scale");
        for (const auto& m : metrics) {
            std::printf(" %22s", metric_format(m).first.c_str());
            if (ratios) std::printf(" %8s", "/floor");
        }
        std::printf("\n");
        if (model) {
            for (const auto& s : j["scales"])
                print_row("model", std::to_string(s["scale"].get<int64_t>()) + "x", s, metrics,
                          ratios);
            const auto& random = j["random"];
            for (const auto& s : random["scales"])
                print_row("random model (init seed " +
                              std::to_string(random["init_seed"].get<uint64_t>()) + ")",
                          std::to_string(s["scale"].get<int64_t>()) + "x", s, metrics, ratios);
        } else {
            print_row("fake", "", j, metrics, ratios);
        }
        if (ratios)
            print_row("floor (" + std::to_string(j["floor"]["n"].get<int64_t>()) + " from " +
                          std::filesystem::path(j["floor"]["folder"].get<std::string>())
                              .filename()
                              .string() +
                          ")",
                      "", j["floor"], metrics, ratios);
    }
    if (j.contains("seam")) {
        const auto& s = j["seam"];
        std::printf(
            "seam (tile %lld, %lldx%lld, %lld seeds): max |tiled - direct| = %.3g, "
            "gradient ratio boundary/inside = %.3f (independent tiles: %.3f)\n",
            (long long)s["tile"].get<int64_t>(), (long long)s["width"].get<int64_t>(),
            (long long)s["height"].get<int64_t>(), (long long)s["seeds"].get<int64_t>(),
            s["max_abs_diff"].get<double>(), s["gradient_ratio"].get<double>(),
            s["naive_gradient_ratio"].get<double>());
    }
}

RegisterCommand reg(60, [](CLI::App& app, Globals&) {
    auto a = std::make_shared<EvalArgs>();
    auto& r = a->request;
    auto* cmd = app.add_subcommand(
        "eval", "quality metrics (SWD, FID, KID, ScaleInv, seam score) against real images");
    cmd->add_option("-m,--model", r.model, "generate the samples with this model");
    cmd->add_option("--fake", r.fake, "or: a folder of generated images");
    cmd->add_option("--real", r.real, "folder of real images (.png/.jpg/.jpeg)")->required();
    cmd->add_option("--floor", r.floor,
                    "folder of training photos, sampled like --real: the floor row (what a "
                    "perfect model of them would score)");
    cmd->add_option("--metrics", r.metrics,
                    "comma-separated: swd, fid, kid, fd-mnv2, kd-mnv2, fd-incv3m5, kd-incv3m5 "
                    "(docs/features.md), seam")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--scales", r.scales, "ScaleInv factors, e.g. 1,2,4,8 (with --model)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--n", r.n,
                    "generated samples per scale (canvas seeds sample-seed * 2^32 + 0..n-1), fake "
                    "images and floor crops (0 = as many as real images)")
        ->capture_default_str();
    cmd->add_option("--crops-per-image", r.crops_per_image,
                    "random crops per real photo at the model's scale (0 = one centred square)")
        ->capture_default_str();
    cmd->add_option("--max-scale", r.max_scale,
                    "crops: short side scaled to size x U(1, max-scale), as igan train")
        ->capture_default_str();
    cmd->add_option("--sample-seed", r.sample_seed,
                    "seed of the crops, the generated samples and the bootstrap draws")
        ->capture_default_str();
    cmd->add_option("--bootstrap", r.bootstrap, "bootstrap draws for each spread (0 = none)")
        ->capture_default_str();
    cmd->add_option("--random-seed", r.random_seed,
                    "init seed of the random-model row (as igan init --seed)")
        ->capture_default_str();
    cmd->add_option("--inception", r.inception,
                    "InceptionV3 weights (safetensors converted from pytorch-fid) for fid/kid");
    cmd->add_option("--features", r.features,
                    "MobileNetV2 feature weights for fd-mnv2/kd-mnv2 (scripts/fetch-features.sh; "
                    "docs/features.md)")
        ->capture_default_str();
    cmd->add_option("--incv3-features", r.incv3_features,
                    "InceptionV3 (to mixed5) feature weights for fd-incv3m5/kd-incv3m5 "
                    "(scripts/fetch-features.sh; docs/features.md)")
        ->capture_default_str();
    cmd->add_option("--size", r.size,
                    "with --fake: crop every image to size x size like the real photos (0 = all "
                    "images must share one size and are compared as they are)")
        ->capture_default_str();
    cmd->add_option("--device", r.device, "cpu or cuda")->capture_default_str();
    add_precision_option(cmd, &r.precision);
    cmd->add_option("--config", r.config_override, "config for weight files without metadata");
    cmd->add_option("--tile", r.tile, "render tile size (0 = 256)")->capture_default_str();
    cmd->add_option("--seam-tile", r.seam_tile, "seam score tile (0 = 4 x upscale)")
        ->capture_default_str();
    cmd->add_option("--kid-subsets", r.kid_subsets, "KID subsets")->capture_default_str();
    cmd->add_option("--kid-subset-size", r.kid_subset_size, "KID subset size (capped at the sets)")
        ->capture_default_str();
    cmd->add_flag("--json", a->json, "print one JSON object on stdout");
    cmd->add_flag("-q,--quiet", a->quiet, "no progress output");
    return std::make_pair(cmd, Runner([a] {
                              validate_eval_request(a->request);
                              // Units: training-size images read or generated (an N x sample counts
                              // N^2).
                              ProgressBar bar("eval", a->quiet, 0, "images");
                              const auto out =
                                  run_eval(a->request, [&](const Progress& p) { bar.update(p); });
                              bar.finish();
                              if (a->json) {
                                  std::cout << out << "\n";
                              } else {
                                  print_table(out);
                              }
                              return 0;
                          }));
});

}  // namespace
}  // namespace igan::cli
