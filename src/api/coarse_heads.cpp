// Fitted coarse heads: fitting them (igan fit-coarse) and their side file, which Engine loads
// strictly next to its model. The file names the model's SHA-256: a head fitted on other weights
// reads other features, so a stale file is set aside (ModelSummary::coarse_heads_note).
#include "api/coarse_heads.h"

#include <chrono>
#include <set>
#include <tuple>
#include <nlohmann/json.hpp>

#include "core/device.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "weights/model_file.h"

namespace igan {

namespace {

constexpr const char* kCoarseHeadsArch = "igan.coarse_heads";

std::string source_name(int rgb_index) {
    return rgb_index == kStructureLevel ? "z_s" : "to_rgb" + std::to_string(rgb_index);
}

std::string tensor_name(int rgb_index, const char* what) {
    return "coarse." + source_name(rgb_index) + "." + what;
}

}  // namespace

std::string coarse_heads_path_for(const std::string& model_path) {
    const std::string ext = ".safetensors";
    std::string base = model_path;
    if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0)
        base.resize(base.size() - ext.size());
    return base + ".coarse.safetensors";
}

LoadedCoarseHeads load_coarse_heads(const std::string& path, const GeneratorConfig& config,
                                    const std::string& model_sha256) {
    const TensorFile file = read_safetensors(path);
    check_igan_identity(file, path, kCoarseHeadsArch, true);
    LoadedCoarseHeads out;
    const auto sha = file.metadata.find("igan.model_sha256");
    if (sha == file.metadata.end()) throw Error(path + ": no igan.model_sha256 in its metadata");
    if (sha->second != model_sha256) {
        out.note = path + " was fitted for model " + sha->second.substr(0, 16) + ", not " +
                   model_sha256.substr(0, 16) + ": refit it (igan fit-coarse)";
        return out;
    }
    std::map<int, double> psnr;
    const auto levels = file.metadata.find("igan.coarse");
    if (levels != file.metadata.end()) {
        try {
            for (const auto& l : nlohmann::json::parse(levels->second).at("levels"))
                psnr[l.at("level").get<int>()] = l.at("held_out_psnr").get<double>();
        } catch (const nlohmann::json::exception& e) {
            throw Error(path + ": igan.coarse: " + e.what());
        }
    }
    // Strict: every head of this model's levels, nothing else, every shape right.
    std::vector<std::string> problems;
    std::set<std::string> used;
    for (int s : coarse_sources(config)) {
        CoarseHead h;
        h.rgb_index = s;
        const int64_t c = coarse_channels(config, s);
        for (auto [what, shape, dst] :
             {std::tuple<const char*, std::vector<int64_t>, torch::Tensor*>{"weight", {3, c}, &h.weight},
              {"bias", {3}, &h.bias}}) {
            const auto name = tensor_name(s, what);
            const auto it = file.tensors.find(name);
            if (it == file.tensors.end()) {
                problems.push_back("missing " + name);
                continue;
            }
            used.insert(name);
            if (it->second.sizes() != at::IntArrayRef(shape) || it->second.scalar_type() != at::kFloat) {
                problems.push_back(name + " must be float32 " + c10::str(at::IntArrayRef(shape)) +
                                   ", is " + c10::str(it->second.scalar_type(), " ", it->second.sizes()));
                continue;
            }
            *dst = it->second;
        }
        const int level = coarse_level(config, s);
        out.heads[level] = std::make_shared<const CoarseHead>(std::move(h));
        out.psnr[level] = psnr.count(level) ? psnr[level] : 0.0;
    }
    for (const auto& [name, t] : file.tensors)
        if (!used.count(name)) problems.push_back("unexpected " + name);
    if (!problems.empty()) {
        std::string all;
        for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
        throw Error(path + ": " + all);
    }
    return out;
}

FitCoarseResult fit_coarse(const FitCoarseRequest& r, const ProgressFn& progress) {
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const torch::Device device = parse_device(r.device);
    LoadedGenerator model = load_generator(r.model);
    model.generator->to(device);
    CoarseFitOptions o;
    o.samples = r.samples;
    o.held_out = r.held_out;
    o.side = r.side;
    o.seed = r.seed;
    o.y_range = r.y_range;
    o.ridge = r.ridge;
    const auto fit = fit_coarse_heads(model.generator, device, o, [&](int64_t done, int64_t total) {
        if (progress) progress({done, total, elapsed(), ""});
    });

    FitCoarseResult result;
    result.path = r.out.empty() ? coarse_heads_path_for(r.model) : r.out;
    TensorFile file;
    nlohmann::json levels = nlohmann::json::array();
    for (size_t k = 0; k < fit.heads.size(); ++k) {
        const auto& h = fit.heads[k];
        const auto& l = fit.levels[k];
        file.tensors[tensor_name(h.rgb_index, "weight")] = h.weight;
        file.tensors[tensor_name(h.rgb_index, "bias")] = h.bias;
        result.levels.push_back({l.level, source_name(h.rgb_index), l.held_out_psnr,
                                 l.held_out_min_psnr, l.partial_psnr});
        levels.push_back({{"level", l.level},
                          {"source", source_name(h.rgb_index)},
                          {"held_out_psnr", l.held_out_psnr},
                          {"held_out_min_psnr", l.held_out_min_psnr},
                          {"partial_psnr", l.partial_psnr}});
    }
    const nlohmann::json settings = {{"samples", r.samples}, {"held_out", r.held_out},
                                     {"side", r.side},       {"seed", r.seed},
                                     {"y_range", r.y_range}, {"ridge", r.ridge}};
    file.metadata = {{"igan.format_version", kIganFormatVersion},
                     {"igan.arch", kCoarseHeadsArch},
                     {"igan.model_sha256", model.sha256},
                     {"igan.coarse", nlohmann::json{{"levels", levels}, {"fit", settings}}.dump()}};
    write_safetensors(result.path, file);
    result.seconds = elapsed();
    return result;
}

}  // namespace igan
