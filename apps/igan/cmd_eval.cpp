// `igan eval`: quality metrics of a model or of a folder of images against real images.
#include <cstdio>
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

std::string num(const ojson& j, const char* key, const char* fmt = "%.4f") {
    if (!j.contains(key)) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, j[key].get<double>());
    return buf;
}

void print_metrics_row(const std::string& label, const ojson& j) {
    std::string kid = num(j, "kid", "%.5f");
    if (j.contains("kid_std")) kid += " ± " + num(j, "kid_std", "%.5f");
    std::printf("%-10s %12s %12s %24s\n", label.c_str(), num(j, "swd").c_str(),
                num(j, "fid").c_str(), kid.c_str());
}

void print_table(const std::string& text) {
    const auto j = ojson::parse(text);
    const bool model = j["mode"] == "model";
    if (model) {
        std::printf("model %s (%s), %lld px, %lld samples per scale\n",
                    j["model"].get<std::string>().c_str(),
                    j["model_config"].get<std::string>().c_str(),
                    (long long)j["size"].get<int64_t>(), (long long)j["n"].get<int64_t>());
    } else {
        std::printf("fake %s (%lld images) vs real %s (%lld images), %lldx%lld\n",
                    j["fake"].get<std::string>().c_str(), (long long)j["n_fake"].get<int64_t>(),
                    j["real"].get<std::string>().c_str(), (long long)j["n_real"].get<int64_t>(),
                    (long long)j["width"].get<int64_t>(), (long long)j["height"].get<int64_t>());
    }
    if (j.contains("swd") || j.contains("fid") || j.contains("kid")) {
        std::printf("%-10s %12s %12s %24s\n", model ? "scale" : "", "SWDx1e3", "FID", "KID");
        if (model) {
            for (const auto& s : j["scales"])
                print_metrics_row(std::to_string(s["scale"].get<int64_t>()) + "x", s);
        } else {
            print_metrics_row("", j);
        }
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
    cmd->add_option("--metrics", r.metrics, "comma-separated: swd, fid, kid, seam")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--scales", r.scales, "ScaleInv factors, e.g. 1,2,4,8 (with --model)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--n", r.n, "samples per scale, seeds 0..n-1 (0 = as many as real images)")
        ->capture_default_str();
    cmd->add_option("--inception", r.inception,
                    "InceptionV3 weights (safetensors converted from pytorch-fid) for fid/kid");
    cmd->add_option("--size", r.size,
                    "with --fake: centre-crop and resize every image to size x size (0 = all "
                    "images must share one size)")
        ->capture_default_str();
    cmd->add_option("--device", r.device, "cpu or cuda")->capture_default_str();
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
