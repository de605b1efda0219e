#include "model/config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace igan {

using nlohmann::json;

int GeneratorConfig::patch_size() const {
    int n = ts_input_size;
    for (int i = 0; i < num_ts_convs(); ++i) n = (i % 2 == 0) ? 2 * n - 3 : n - 2;
    return n;
}

std::vector<int> GeneratorConfig::ts_conv_in_channels() const {
    std::vector<int> in;
    for (int i = 0; i < num_ts_convs(); ++i)
        in.push_back(i == 0 ? local_latent_dim : ts_conv_out_channels[i - 1]);
    return in;
}

std::vector<int> GeneratorConfig::to_rgb_src_conv() const {
    std::vector<int> src;
    for (int i = 1; i < num_ts_convs(); i += 2) src.push_back(i);
    return src;
}

// ToRGB k reads conv src and uses style src + 2; the last one uses the extra final slot.
std::vector<int> GeneratorConfig::to_rgb_style_index() const {
    std::vector<int> tgt;
    for (int src : to_rgb_src_conv()) tgt.push_back(std::min(src + 2, num_ts_convs()));
    return tgt;
}

double GeneratorConfig::vert_scale() const {
    if (coord_vert_scale > 0) return coord_vert_scale;
    return 2.0 * coord_vert_cut_pt / double(ts_input_size + coord_vert_sample_size - 1);
}

int GeneratorConfig::coord_grid_width() const {
    return int(std::lround(ss_input_size() / coord_hori_occupy_ratio));
}

int GeneratorConfig::hori_period() const {
    return coord_hori_period > 0 ? coord_hori_period : coord_grid_width() - 1;
}

std::vector<std::string> GeneratorConfig::validate() const {
    std::vector<std::string> e;
    auto positive = [&](const char* name, double v, double max) {
        if (!(v > 0) || v > max) e.push_back(std::string(name) + " must be in (0, " +
                                             std::to_string(int64_t(max)) + "], got " +
                                             std::to_string(v));
    };
    positive("global_latent_dim", global_latent_dim, 8192);
    positive("local_latent_dim", local_latent_dim, 8192);
    if (n_mlp < 0 || n_mlp > 64) e.push_back("n_mlp must be in [0, 64]");
    positive("ss_n_layers", ss_n_layers, 64);
    positive("ss_unfold_radius", ss_unfold_radius, 32);
    positive("ts_input_size", ts_input_size, 1024);
    if (ts_input_size < 5) e.push_back("ts_input_size must be at least 5");
    if (num_ts_convs() < 2 || num_ts_convs() % 2 != 0 || num_ts_convs() > 16)
        e.push_back("ts_conv_out_channels needs an even number (2..16) of entries, one per conv");
    for (int c : ts_conv_out_channels)
        if (c <= 0 || c > 8192) e.push_back("ts_conv_out_channels entries must be in (0, 8192]");
    positive("full_size", full_size, 1 << 16);
    positive("coord_vert_sample_size", coord_vert_sample_size, 1 << 16);
    positive("coord_hori_occupy_ratio", coord_hori_occupy_ratio, 1);
    positive("coord_vert_cut_pt", coord_vert_cut_pt, 100);
    if (coord_vert_scale < 0) e.push_back("coord_vert_scale must be >= 0 (0 = derived)");
    if (coord_hori_period < 0) e.push_back("coord_hori_period must be >= 0 (0 = derived)");
    if (e.empty() && full_size < patch_size())
        e.push_back("full_size " + std::to_string(full_size) + " is smaller than the patch size " +
                    std::to_string(patch_size()));
    return e;
}

int DiscriminatorConfig::log_size() const { return int(std::lround(std::log2(patch_size))); }

int DiscriminatorConfig::channels_at(int resolution) const {
    int base = 512;
    if (resolution >= 64) base = (256 * channel_multiplier) >> std::min(10, int(std::lround(std::log2(resolution))) - 6);
    return std::max(1, int(std::lround(base * d_extra_multiplier)));
}

int DiscriminatorConfig::final_size() const {
    int n = patch_size;
    for (int b = 0; b < num_blocks(); ++b) n = (n - 2) / 2 + 1;  // blur pad 2/2, 3x3 stride 2
    return n;
}

std::vector<std::string> DiscriminatorConfig::validate() const {
    std::vector<std::string> e;
    if (channel_multiplier <= 0 || channel_multiplier > 64) e.push_back("d channel_multiplier must be in (0, 64]");
    if (!(d_extra_multiplier > 0) || d_extra_multiplier > 16) e.push_back("d_extra_multiplier must be in (0, 16]");
    if (patch_size < 16 || patch_size > 4096) e.push_back("discriminator patch_size must be in [16, 4096]");
    if (stddev_group < 1) e.push_back("stddev_group must be >= 1");
    if (coord_num_dir < 1 || coord_num_dir > 4) e.push_back("coord_num_dir must be in [1, 4]");
    if (e.empty() && final_size() < 1) e.push_back("discriminator patch_size too small for its depth");
    return e;
}

std::vector<std::string> ModelConfig::validate() const {
    auto e = generator.validate();
    for (auto& s : discriminator.validate()) e.push_back(s);
    if (e.empty() && discriminator.patch_size != generator.patch_size())
        e.push_back("discriminator patch_size " + std::to_string(discriminator.patch_size) +
                    " differs from the generator's patch size " +
                    std::to_string(generator.patch_size()));
    return e;
}

ModelConfig preset_config(const std::string& name) {
    ModelConfig c;
    c.name = name;
    auto& g = c.generator;
    auto& d = c.discriminator;
    if (name == "paper") {
        g.ts_conv_out_channels = {512, 512, 512, 512, 512, 512, 512, 512};
    } else if (name == "tiny") {
        g.global_latent_dim = 64;
        g.local_latent_dim = 32;
        g.n_mlp = 4;
        g.ts_conv_out_channels = {64, 64, 64, 64, 32, 32};
        g.full_size = 101;
        d.d_extra_multiplier = 0.125;
    } else if (name == "golden") {
        g.global_latent_dim = 64;
        g.local_latent_dim = 32;
        g.n_mlp = 2;
        g.ts_conv_out_channels = {64, 64, 64, 64, 64, 64, 32, 32};
        d.d_extra_multiplier = 0.125;
        d.stddev_group = 16;
    } else {
        throw Error("unknown config '" + name + "': use one of paper, tiny, golden, or a .json file");
    }
    d.patch_size = g.patch_size();
    return c;
}

std::vector<std::string> preset_names() { return {"paper", "tiny", "golden"}; }

// JSON: unknown keys are errors so that typos do not silently fall back to defaults.
namespace {

template <typename T>
void read_key(const json& j, const char* key, T& value) {
    if (j.contains(key)) value = j.at(key).get<T>();
}

void reject_unknown(const json& j, const std::vector<std::string>& known, const char* what) {
    for (auto it = j.begin(); it != j.end(); ++it)
        if (std::find(known.begin(), known.end(), it.key()) == known.end())
            throw Error(std::string("unknown key '") + it.key() + "' in " + what + " config");
}

}  // namespace

void to_json(json& j, const GeneratorConfig& c) {
    j = json{{"global_latent_dim", c.global_latent_dim},
             {"local_latent_dim", c.local_latent_dim},
             {"n_mlp", c.n_mlp},
             {"channel_multiplier", c.channel_multiplier},
             {"ss_n_layers", c.ss_n_layers},
             {"ss_unfold_radius", c.ss_unfold_radius},
             {"ts_input_size", c.ts_input_size},
             {"ts_conv_out_channels", c.ts_conv_out_channels},
             {"full_size", c.full_size},
             {"coord_vert_sample_size", c.coord_vert_sample_size},
             {"coord_hori_occupy_ratio", c.coord_hori_occupy_ratio},
             {"coord_vert_cut_pt", c.coord_vert_cut_pt},
             {"coord_continuous", c.coord_continuous},
             {"coord_vert_scale", c.coord_vert_scale},
             {"coord_hori_period", c.coord_hori_period}};
}

void from_json(const json& j, GeneratorConfig& c) {
    reject_unknown(j,
                   {"global_latent_dim", "local_latent_dim", "n_mlp", "channel_multiplier",
                    "ss_n_layers", "ss_unfold_radius", "ts_input_size", "ts_conv_out_channels",
                    "full_size", "coord_vert_sample_size", "coord_hori_occupy_ratio",
                    "coord_vert_cut_pt", "coord_continuous", "coord_vert_scale",
                    "coord_hori_period"},
                   "generator");
    read_key(j, "global_latent_dim", c.global_latent_dim);
    read_key(j, "local_latent_dim", c.local_latent_dim);
    read_key(j, "n_mlp", c.n_mlp);
    read_key(j, "channel_multiplier", c.channel_multiplier);
    read_key(j, "ss_n_layers", c.ss_n_layers);
    read_key(j, "ss_unfold_radius", c.ss_unfold_radius);
    read_key(j, "ts_input_size", c.ts_input_size);
    read_key(j, "ts_conv_out_channels", c.ts_conv_out_channels);
    read_key(j, "full_size", c.full_size);
    read_key(j, "coord_vert_sample_size", c.coord_vert_sample_size);
    read_key(j, "coord_hori_occupy_ratio", c.coord_hori_occupy_ratio);
    read_key(j, "coord_vert_cut_pt", c.coord_vert_cut_pt);
    read_key(j, "coord_continuous", c.coord_continuous);
    read_key(j, "coord_vert_scale", c.coord_vert_scale);
    read_key(j, "coord_hori_period", c.coord_hori_period);
}

void to_json(json& j, const DiscriminatorConfig& c) {
    j = json{{"channel_multiplier", c.channel_multiplier},
             {"d_extra_multiplier", c.d_extra_multiplier},
             {"patch_size", c.patch_size},
             {"stddev_group", c.stddev_group},
             {"coord_num_dir", c.coord_num_dir}};
}

void from_json(const json& j, DiscriminatorConfig& c) {
    reject_unknown(j, {"channel_multiplier", "d_extra_multiplier", "patch_size", "stddev_group",
                       "coord_num_dir"},
                   "discriminator");
    read_key(j, "channel_multiplier", c.channel_multiplier);
    read_key(j, "d_extra_multiplier", c.d_extra_multiplier);
    read_key(j, "patch_size", c.patch_size);
    read_key(j, "stddev_group", c.stddev_group);
    read_key(j, "coord_num_dir", c.coord_num_dir);
}

void to_json(json& j, const ModelConfig& c) {
    j = json{{"name", c.name}, {"generator", c.generator}, {"discriminator", c.discriminator}};
}

void from_json(const json& j, ModelConfig& c) {
    reject_unknown(j, {"name", "generator", "discriminator"}, "model");
    read_key(j, "name", c.name);
    if (j.contains("generator")) from_json(j.at("generator"), c.generator);
    if (j.contains("discriminator")) from_json(j.at("discriminator"), c.discriminator);
}

namespace {

void throw_if_invalid(const ModelConfig& c, const std::string& where) {
    const auto problems = c.validate();
    if (problems.empty()) return;
    std::string msg = where + ": invalid config:";
    for (const auto& p : problems) msg += " " + p + ";";
    msg.pop_back();
    throw Error(msg);
}

// The golden config.json: the original train_params plus the width patch in golden_overrides.
ModelConfig from_original_params(const json& root) {
    const json& p = root.at("train_params");
    ModelConfig c;
    c.name = "custom";
    auto& g = c.generator;
    read_key(p, "global_latent_dim", g.global_latent_dim);
    read_key(p, "local_latent_dim", g.local_latent_dim);
    read_key(p, "n_mlp", g.n_mlp);
    read_key(p, "channel_multiplier", g.channel_multiplier);
    read_key(p, "ss_n_layers", g.ss_n_layers);
    read_key(p, "ss_unfold_radius", g.ss_unfold_radius);
    read_key(p, "ts_input_size", g.ts_input_size);
    read_key(p, "full_size", g.full_size);
    read_key(p, "coord_vert_sample_size", g.coord_vert_sample_size);
    read_key(p, "coord_hori_occupy_ratio", g.coord_hori_occupy_ratio);
    read_key(p, "coord_vert_cut_pt", g.coord_vert_cut_pt);
    read_key(p, "coord_continuous", g.coord_continuous);
    g.ts_conv_out_channels = {512, 512, 512, 512, 512, 512, 256 * g.channel_multiplier,
                              256 * g.channel_multiplier};
    if (root.contains("golden_overrides")) {
        const json& o = root.at("golden_overrides");
        read_key(o, "ts_conv_out_channels", g.ts_conv_out_channels);
    }
    auto& d = c.discriminator;
    d.channel_multiplier = g.channel_multiplier;
    read_key(p, "d_extra_multiplier", d.d_extra_multiplier);
    int batch = 16;
    read_key(p, "batch_size", batch);
    d.stddev_group = std::min(batch, 16);  // what the original helper computes for batch <= 16
    if (root.contains("derived") && root.at("derived").contains("d_stddev_group"))
        d.stddev_group = root.at("derived").at("d_stddev_group").get<int>();
    d.patch_size = g.patch_size();
    return c;
}

}  // namespace

ModelConfig model_config_from_string(const std::string& text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception& e) {
        throw Error(std::string("config is not valid JSON: ") + e.what());
    }
    ModelConfig c;
    try {
        if (j.contains("train_params")) {
            c = from_original_params(j);
        } else {
            c = j.get<ModelConfig>();
        }
    } catch (const json::exception& e) {
        throw Error(std::string("config has a value of the wrong type: ") + e.what());
    }
    throw_if_invalid(c, "config");
    return c;
}

std::string model_config_to_string(const ModelConfig& c) { return json(c).dump(); }

}  // namespace igan
