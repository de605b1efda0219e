#pragma once
// Model configurations. Field names follow the original YAML keys (configs/model/*.yaml of
// hubert0527/infinityGAN @ a9b45dd) where one exists; defaults are the paper's.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace igan {

// The tensor shapes of a state dict by key (the original's names, docs/convert.md).
using TensorShapes = std::map<std::string, std::vector<int64_t>>;

struct GeneratorConfig {
    int global_latent_dim = 512;
    int local_latent_dim = 256;
    int n_mlp = 8;
    int channel_multiplier = 2;
    int ss_n_layers = 4;
    int ss_unfold_radius = 3;
    int ts_input_size = 11;
    // One entry per texture conv; even convs upsample, odd convs are plain. Empty = the paper's.
    std::vector<int> ts_conv_out_channels;
    int full_size = 197;  // training image size; the patch size follows from the geometry
    int coord_vert_sample_size = 10;
    double coord_hori_occupy_ratio = 0.25;
    double coord_vert_cut_pt = 3.0;
    bool coord_continuous = true;
    // Inference coordinates; 0 means "derive as the original does" (0.3 and 139 for paper).
    double coord_vert_scale = 0.0;
    int coord_hori_period = 0;

    // Derived geometry.
    int num_ts_convs() const { return int(ts_conv_out_channels.size()); }
    int num_upsamples() const { return num_ts_convs() / 2; }
    int n_latent() const { return num_ts_convs() + 1; }
    int ss_margin() const { return ss_n_layers * ss_unfold_radius; }
    int ss_input_size() const { return ts_input_size + 2 * ss_margin(); }
    int patch_size() const;
    std::vector<int> ts_conv_in_channels() const;
    std::vector<int> to_rgb_src_conv() const;
    std::vector<int> to_rgb_style_index() const;
    double vert_scale() const;  // raw vertical coordinate per latent cell
    int hori_period() const;    // latent cells per horizontal period at inference
    int coord_grid_height() const { return ss_input_size() + coord_vert_sample_size; }
    int coord_grid_width() const;  // training grid width (period + 1, as the original)

    std::vector<std::string> validate() const;  // every problem, empty when valid

    // `base` with the widths that a generator state dict's shapes show (n_mlp, the latent
    // dims, the structure synthesizer's depth and kernel, the texture convs' widths); what
    // the shapes do not show stays `base`'s. Each change is noted as "name value (config: old)".
    static GeneratorConfig from_shapes(const TensorShapes& shapes, GeneratorConfig base,
                                       std::vector<std::string>* notes = nullptr);
};

struct DiscriminatorConfig {
    int channel_multiplier = 2;
    double d_extra_multiplier = 1.0;
    int patch_size = 101;
    int stddev_group = 4;  // the original's helper yields 16 for batch 16; golden tests set it
    int coord_num_dir = 3;

    int log_size() const;
    int channels_at(int resolution) const;
    int num_blocks() const { return log_size() - 2; }
    int final_size() const;
    std::vector<std::string> validate() const;

    // As GeneratorConfig::from_shapes, for a discriminator state dict (coord_num_dir, the head's
    // d_extra_multiplier, the channel multiplier); `base.patch_size` must already be the model's.
    static DiscriminatorConfig from_shapes(const TensorShapes& shapes, DiscriminatorConfig base,
                                           std::vector<std::string>* notes = nullptr);
};

struct ModelConfig {
    std::string name = "paper";
    GeneratorConfig generator;
    DiscriminatorConfig discriminator;
    std::vector<std::string> validate() const;
};

// Presets: "paper" (the original geometry and widths), "tiny" (3 upsamplings, 53-px patches,
// narrow; trains on 2 CPU cores), "golden" (the widths of the reference set in tests/data/golden).
ModelConfig preset_config(const std::string& name);
std::vector<std::string> preset_names();

void to_json(nlohmann::json& j, const GeneratorConfig& c);
void from_json(const nlohmann::json& j, GeneratorConfig& c);
void to_json(nlohmann::json& j, const DiscriminatorConfig& c);
void from_json(const nlohmann::json& j, DiscriminatorConfig& c);
void to_json(nlohmann::json& j, const ModelConfig& c);
void from_json(const nlohmann::json& j, ModelConfig& c);

// Parses JSON text; throws igan::Error listing every problem. (Config files are read by
// weights/config_file.h: this module never touches files.)
ModelConfig model_config_from_string(const std::string& json_text);
std::string model_config_to_string(const ModelConfig& c);

}  // namespace igan
