// Fitted coarse heads and coarse students: fitting them (igan fit-coarse [--student]) and their
// side file, which Engine loads strictly next to its model. The file names the model's SHA-256:
// a head or student fitted on other weights imitates another model, so a stale file is set aside
// (ModelSummary::coarse_heads_note).
#include "api/coarse_heads.h"

#include <chrono>
#include <filesystem>
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

constexpr const char* kStudentsKey = "igan.coarse_students";

// "student.m3." for level -3.
std::string student_prefix(int level) { return "student.m" + std::to_string(-level) + "."; }

nlohmann::json student_config_json(const CoarseStudentConfig& c) {
    return {{"level", c.level},           {"cells", c.cells},   {"channels", c.channels},
            {"dilations", c.dilations},   {"shift", c.shift},   {"latent_dim", c.latent_dim},
            {"style_dim", c.style_dim}, {"latent_channels", c.latent_channels}};
}

CoarseStudentConfig student_config_from_json(const nlohmann::json& j) {
    CoarseStudentConfig c;
    c.level = j.at("level").get<int>();
    c.cells = j.at("cells").get<int>();
    c.channels = j.at("channels").get<int>();
    c.dilations = j.at("dilations").get<std::vector<int>>();
    c.shift = j.at("shift").get<int>();
    c.latent_dim = j.at("latent_dim").get<int64_t>();
    c.style_dim = j.at("style_dim").get<int64_t>();
    c.latent_channels = j.at("latent_channels").get<int64_t>();
    return c;
}

// The students a file's metadata describes, their weights taken strictly from its tensors
// (names into `used`, every problem into `problems`).
std::map<int, std::shared_ptr<const CoarseStudent>> load_students(
    const TensorFile& file, const GeneratorConfig& model, std::set<std::string>* used,
    std::vector<std::string>* problems) {
    std::map<int, std::shared_ptr<const CoarseStudent>> out;
    const auto meta = file.metadata.find(kStudentsKey);
    if (meta == file.metadata.end()) return out;
    nlohmann::json entries;
    try {
        entries = nlohmann::json::parse(meta->second).at("students");
    } catch (const nlohmann::json::exception& e) {
        problems->push_back(std::string(kStudentsKey) + ": " + e.what());
        return out;
    }
    for (const auto& e : entries) {
        auto s = std::make_shared<CoarseStudent>();
        try {
            s->config = student_config_from_json(e.at("config"));
            s->held_out_psnr = e.at("held_out_psnr").get<double>();
            s->held_out_min_psnr = e.at("held_out_min_psnr").get<double>();
        } catch (const nlohmann::json::exception& ex) {
            problems->push_back(std::string(kStudentsKey) + ": " + ex.what());
            continue;
        }
        const auto& c = s->config;
        auto bad = c.validate();
        if (bad.empty()) {
            const auto want = CoarseStudentConfig::for_level(model, c.level);
            if (c.cells != want.cells || c.latent_dim != want.latent_dim ||
                c.style_dim != want.style_dim)
                bad.push_back("its cells, latent_dim or style_dim do not fit this model");
        }
        if (!bad.empty() || out.count(c.level)) {
            if (out.count(c.level)) bad.push_back("a second student of the level");
            for (const auto& b : bad)
                problems->push_back("student of level " + std::to_string(c.level) + ": " + b);
            continue;
        }
        s->net = CoarseStudentNet(c);
        torch::NoGradGuard no_grad;
        size_t before = problems->size();
        for (auto& item : s->net->named_parameters()) {
            auto& param = item.value();
            const auto full = student_prefix(c.level) + item.key();
            const auto it = file.tensors.find(full);
            if (it == file.tensors.end()) {
                problems->push_back("missing " + full);
                continue;
            }
            used->insert(full);
            if (it->second.sizes() != param.sizes() || it->second.scalar_type() != at::kFloat) {
                problems->push_back(full + " must be float32 " + c10::str(param.sizes()) +
                                    ", is " + c10::str(it->second.scalar_type(), " ",
                                                       it->second.sizes()));
                continue;
            }
            param.copy_(it->second);
        }
        s->net->eval();
        if (problems->size() == before) out[c.level] = s;
    }
    return out;
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
    std::vector<std::string> problems;
    std::set<std::string> used;
    out.students = load_students(file, config, &used, &problems);
    bool has_heads = false;
    for (const auto& [name, t] : file.tensors) has_heads |= name.rfind("coarse.", 0) == 0;
    std::map<int, double> psnr;
    const auto levels = file.metadata.find("igan.coarse");
    has_heads |= levels != file.metadata.end();
    if (!has_heads && file.metadata.find(kStudentsKey) == file.metadata.end())
        throw Error(path + ": holds neither coarse heads nor coarse students");
    if (levels != file.metadata.end()) {
        try {
            for (const auto& l : nlohmann::json::parse(levels->second).at("levels"))
                psnr[l.at("level").get<int>()] = l.at("held_out_psnr").get<double>();
        } catch (const nlohmann::json::exception& e) {
            throw Error(path + ": igan.coarse: " + e.what());
        }
    }
    // Strict: every head of this model's levels, nothing else, every shape right.
    for (int s : has_heads ? coarse_sources(config) : std::vector<int>{}) {
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
    FitCoarseResult result;
    result.path = r.out.empty() ? coarse_heads_path_for(r.model) : r.out;
    TensorFile file;
    file.metadata = {{"igan.format_version", kIganFormatVersion},
                     {"igan.arch", kCoarseHeadsArch},
                     {"igan.model_sha256", model.sha256}};
    // What an existing side file of the same weights holds of the other kind stays.
    const char* kept_prefix = r.student ? "coarse." : "student.";
    const char* kept_key = r.student ? "igan.coarse" : kStudentsKey;
    if (std::filesystem::exists(result.path)) {
        try {
            const TensorFile old = read_safetensors(result.path);
            const auto sha = old.metadata.find("igan.model_sha256");
            if (sha != old.metadata.end() && sha->second == model.sha256) {
                for (const auto& [name, t] : old.tensors)
                    if (name.rfind(kept_prefix, 0) == 0) file.tensors[name] = t;
                if (old.metadata.count(kept_key))
                    file.metadata[kept_key] = old.metadata.at(kept_key);
            }
        } catch (const Error&) {  // unreadable: replaced by what is fitted now
        }
    }

    if (r.student) {
        StudentFitOptions o;
        o.samples = r.student_samples;
        o.held_out = r.held_out;
        o.side = r.student_side;
        o.seed = r.seed;
        o.y_range = r.student_y_range;
        o.seconds = r.student_seconds;
        o.steps = r.student_steps;
        o.channels = r.student_channels;
        o.dilations = r.student_dilations;
        std::vector<StudentFitReport> reports;
        const auto students = fit_coarse_students(
            model.generator, device, r.student_levels, o, &reports,
            [&](int64_t done, int64_t total, const std::string& what) {
                if (progress) progress({done, total, elapsed(), what});
            });
        nlohmann::json entries = nlohmann::json::array();
        for (size_t k = 0; k < students.size(); ++k) {
            const auto& s = students[k];
            const auto& rep = reports[k];
            for (const auto& item : s.net->named_parameters())
                file.tensors[student_prefix(s.config.level) + item.key()] =
                    item.value().detach().to(torch::kCPU).contiguous();
            FitCoarseLevel l;
            l.level = s.config.level;
            l.source = "student";
            l.held_out_psnr = rep.held_out_psnr;
            l.held_out_min_psnr = rep.held_out_min_psnr;
            l.steps = rep.steps;
            l.first_loss = rep.first_loss;
            l.last_loss = rep.last_loss;
            result.levels.push_back(l);
            entries.push_back({{"config", student_config_json(s.config)},
                               {"held_out_psnr", rep.held_out_psnr},
                               {"held_out_min_psnr", rep.held_out_min_psnr},
                               {"steps", rep.steps},
                               {"seconds", rep.seconds},
                               {"first_loss", rep.first_loss},
                               {"last_loss", rep.last_loss}});
        }
        const nlohmann::json settings = {
            {"samples", r.student_samples}, {"held_out", r.held_out},
            {"side", r.student_side},       {"seed", r.seed},
            {"y_range", r.student_y_range}, {"seconds", r.student_seconds},
            {"steps", r.student_steps}};
        file.metadata[kStudentsKey] =
            nlohmann::json{{"students", entries}, {"fit", settings}}.dump();
    } else {
        CoarseFitOptions o;
        o.samples = r.samples;
        o.held_out = r.held_out;
        o.side = r.side;
        o.seed = r.seed;
        o.y_range = r.y_range;
        o.ridge = r.ridge;
        const auto fit =
            fit_coarse_heads(model.generator, device, o, [&](int64_t done, int64_t total) {
                if (progress) progress({done, total, elapsed(), ""});
            });
        nlohmann::json levels = nlohmann::json::array();
        for (size_t k = 0; k < fit.heads.size(); ++k) {
            const auto& h = fit.heads[k];
            const auto& l = fit.levels[k];
            file.tensors[tensor_name(h.rgb_index, "weight")] = h.weight;
            file.tensors[tensor_name(h.rgb_index, "bias")] = h.bias;
            FitCoarseLevel fl;
            fl.level = l.level;
            fl.source = source_name(h.rgb_index);
            fl.held_out_psnr = l.held_out_psnr;
            fl.held_out_min_psnr = l.held_out_min_psnr;
            fl.partial_psnr = l.partial_psnr;
            result.levels.push_back(fl);
            levels.push_back({{"level", l.level},
                              {"source", source_name(h.rgb_index)},
                              {"held_out_psnr", l.held_out_psnr},
                              {"held_out_min_psnr", l.held_out_min_psnr},
                              {"partial_psnr", l.partial_psnr}});
        }
        const nlohmann::json settings = {{"samples", r.samples}, {"held_out", r.held_out},
                                         {"side", r.side},       {"seed", r.seed},
                                         {"y_range", r.y_range}, {"ridge", r.ridge}};
        file.metadata["igan.coarse"] =
            nlohmann::json{{"levels", levels}, {"fit", settings}}.dump();
    }
    write_safetensors(result.path, file);
    result.seconds = elapsed();
    return result;
}

}  // namespace igan
