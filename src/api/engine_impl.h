#pragma once
// Engine internals shared by the files that implement Engine's methods (engine.cpp for plain
// generation, applications.cpp for inversion-based ones).
#include <igan/igan.h>

#include <map>
#include <mutex>
#include <tuple>
#include <nlohmann/json.hpp>

#include "api/coarse_heads.h"
#include "core/rng.h"
#include "render/renderer.h"
#include "render/styled_generator.h"
#include "weights/model_file.h"

namespace igan {

constexpr int64_t kDefaultTile = 256;
constexpr int64_t kStyleMeanSamples = 4096;
constexpr uint64_t kStyleMeanSeed = 0x5EED5EED5EEDull;

// The XMP packet of a full equirectangular panorama (Google's GPano namespace).
std::string gpano_xmp(int64_t width, int64_t height);

struct Engine::Impl {
    LoadedGenerator model;
    torch::Device device{torch::kCPU};
    Precision precision = Precision::fp32;  // of every render (RenderOptions::precision)
    ModelSummary summary;
    LoadedCoarseHeads coarse;  // from the model's side file, if any
    mutable std::once_flag style_mean_once;
    mutable torch::Tensor style_mean;
    // Students' colour maps by (level, seed, psi, fade), made on first use (a few thousand at
    // most: the map is cleared beyond that).
    mutable std::mutex colour_mutex;
    mutable std::map<std::tuple<int, uint64_t, double, bool>, torch::Tensor> colour_maps;
    torch::Tensor student_colours(int level, uint64_t seed, double psi, bool fade) const;

    torch::Tensor mean_style() const {
        std::call_once(style_mean_once, [&] {
            torch::NoGradGuard no_grad;
            const int64_t dim = model.config.generator.global_latent_dim;
            auto z = torch::empty({kStyleMeanSamples, dim});
            fill_normal_field(z.data_ptr<float>(), kStyleMeanSeed, kGlobalLatentStream, dim, 0, 0,
                              kStyleMeanSamples, 1);
            z = z.view({dim, kStyleMeanSamples}).t().to(device);
            Generator g = model.generator;  // shared weights; forward is not const in LibTorch
            style_mean = g->texture_synthesizer->mapping(z).mean(0, true);
        });
        return style_mean;
    }

    // (z_g, w) of a seed with truncation psi: z_g (1, G) raw for G_S, w (1, G).
    std::pair<torch::Tensor, torch::Tensor> seed_style(uint64_t seed, double psi) const {
        torch::NoGradGuard no_grad;
        Generator g = model.generator;
        auto [z, w] = seed_latent_and_style(g, device, seed);
        if (psi != 1.0) {
            const auto mean = mean_style();
            w = mean + psi * (w - mean);
            z = z * psi;  // the structure synthesizer reads raw z_g, whose mean is 0
        }
        return {z, w};
    }

    torch::Tensor every_slot(const torch::Tensor& w) const {
        return style_for_every_layer(model.config.generator, w);
    }

    std::unique_ptr<StyledGenerator> styled(const GenerateRequest& r) const {
        if (r.styles.empty()) {
            auto [z, w] = seed_style(r.seed, r.psi);
            return std::make_unique<StyledGenerator>(model.generator, device, z, every_slot(w));
        }
        std::vector<torch::Tensor> zs, ws;
        std::vector<FusionCentre> centres;
        for (const auto& s : r.styles) {
            auto [z, w] = seed_style(s.seed, r.psi);
            zs.push_back(z);
            ws.push_back(w);
            centres.push_back({s.x, s.y});
        }
        auto model_out = std::make_unique<StyledGenerator>(model.generator, device, zs[0],
                                                           every_slot(ws[0]));
        model_out->fuse(torch::cat(zs), every_slot(torch::cat(ws)), centres, r.style_band);
        return model_out;
    }

    RenderOptions options(const GenerateRequest& r) const {
        RenderOptions o;
        o.tile = r.tile > 0 ? r.tile : kDefaultTile;
        o.batch = std::max<int64_t>(1, r.batch);
        o.workers = r.workers;
        o.max_tile_height = streaming_tile_height_cap(r.width);
        o.fields.seed = r.seed;
        o.fields.cyclic_period_px = r.cyclic_width;
        o.fields.fade_beyond_band = r.fade_beyond_band;
        o.precision = precision;
        if (r.coarse_student) {
            o.student = coarse.students.at(r.level);  // prepare() checked it is there
            o.rgb_index = kStructureLevel;
        } else if (r.coarse_head) {
            o.head = coarse.heads.at(r.level);  // prepare() checked it is there
            o.rgb_index = o.head->rgb_index;
        } else {
            o.rgb_index = rgb_index_of(r.level);
        }
        return o;
    }

    // The model's checks of a request that passed validate_request (level, coarse head, and
    // through plan_tiles the cyclic period), then its options and plan; throws UsageError.
    TilePlan checked_plan(const GenerateRequest& r, RenderOptions* options) const;

    // The ToRGB whose partial sum is level z (< 0) of the canvas; -1 for z = 0.
    int rgb_index_of(int level) const {
        if (level == 0) return -1;
        const auto& levels = summary.partial_levels;  // coarsest first: ToRGB 0, 1, ...
        for (size_t k = 0; k < levels.size(); ++k)
            if (levels[k] == level) return int(k);
        throw UsageError("no partial ToRGB sum at level " + std::to_string(level));
    }

    // The text chunks of a generated PNG: the record, the software, and for a whole turn of a
    // cyclic canvas at 2:1 (one period wide, half as tall) the GPano XMP packet that photo
    // viewers read as an equirectangular 360-degree panorama.
    std::vector<std::pair<std::string, std::string>> png_text(const GenerateRequest& r,
                                                              const std::string& record) const {
        std::vector<std::pair<std::string, std::string>> text = {
            {"igan", record}, {"Software", "igan " + version_string()}};
        if (r.cyclic_width > 0 && r.level == 0 && r.width == r.cyclic_width &&
            r.width == 2 * r.height)
            text.emplace_back("XML:com.adobe.xmp", gpano_xmp(r.width, r.height));
        return text;
    }

    // The generation record, the one builder of it: generate, shards and Engine::record carry it
    // as it is, outpaint and inbetween add their own fields.
    nlohmann::json record_json(const GenerateRequest& r) const {
        nlohmann::json j = {{"igan_version", version_string()},
                            {"model_sha256", summary.sha256},
                            {"model_config", summary.config_name},
                            {"seed", r.seed},
                            {"x", r.x},
                            {"y", r.y},
                            {"width", r.width},
                            {"height", r.height},
                            {"psi", r.psi},
                            {"beyond_band", r.fade_beyond_band ? "fade" : "texture"}};
        if (r.level != 0) j["level"] = r.level;
        if (r.coarse_head) j["coarse_head"] = true;
        if (r.coarse_student) j["coarse_student"] = true;
        if (r.coarse_student && !r.student_colours) j["student_colours"] = false;
        if (r.cyclic_width > 0) j["cyclic_width"] = r.cyclic_width;
        if (precision != Precision::fp32) j["precision"] = precision_name(precision);
        if (!r.styles.empty()) {
            j["style_band"] = r.style_band;
            for (const auto& st : r.styles)
                j["styles"].push_back({{"seed", st.seed}, {"x", st.x}, {"y", st.y}});
        }
        return j;
    }
    std::string record(const GenerateRequest& r) const { return record_json(r).dump(); }
};

struct RenderJob::Impl {
    const Engine::Impl* engine = nullptr;  // the one that prepared it
    GenerateRequest request;
    RenderOptions options;
    TilePlan plan;
    std::string record;
    std::unique_ptr<StyledGenerator> model;  // the generator with the request's styles
};

}  // namespace igan
