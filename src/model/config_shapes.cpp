// Widths read off a state dict's tensor shapes (docs/convert.md): the tensors of the original's
// checkpoints carry every width, the rest of the geometry comes from the config.
#include <algorithm>
#include <cmath>
#include <optional>

#include "model/config.h"

namespace igan {

namespace {

std::optional<int64_t> dim(const TensorShapes& s, const std::string& key, size_t ndim, size_t d) {
    auto it = s.find(key);
    if (it == s.end() || it->second.size() != ndim) return std::nullopt;
    return it->second[d];
}

// Takes a plausible `value` into `field`, noting a change.
template <typename T>
void infer(T& field, std::optional<int64_t> value, const char* name,
           std::vector<std::string>& notes, int64_t min = 1) {
    if (!value || *value < min || *value > (int64_t(1) << 20)) return;
    if (int64_t(field) != *value) {
        notes.push_back(std::string(name) + " " + std::to_string(*value) + " (config: " +
                        std::to_string(int64_t(field)) + ")");
        field = T(*value);
    }
}

std::string ints_str(const std::vector<int>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
    return out + "]";
}

}  // namespace

GeneratorConfig GeneratorConfig::from_shapes(const TensorShapes& s, GeneratorConfig g,
                                             std::vector<std::string>* notes_out) {
    std::vector<std::string> notes;
    const std::string ss = "structure_synthesizer.implicit_model.conv_stack.";
    const std::string ts = "texture_synthesizer.";
    int n_mlp = 0;
    while (s.count(ts + "mapping." + std::to_string(n_mlp + 1) + ".weight")) ++n_mlp;
    if (n_mlp > 0 || s.count(ts + "convs.0.conv.weight")) infer(g.n_mlp, n_mlp, "n_mlp", notes, 0);
    infer(g.global_latent_dim,
          n_mlp > 0 ? dim(s, ts + "mapping.1.weight", 2, 1)
                    : dim(s, ts + "convs.0.conv.modulation.weight", 2, 1),
          "global_latent_dim", notes);
    infer(g.local_latent_dim, dim(s, ts + "convs.0.conv.weight", 5, 2), "local_latent_dim", notes);
    int ss_layers = 0;
    while (s.count(ss + std::to_string(ss_layers) + ".conv.conv.weight")) ++ss_layers;
    if (ss_layers > 0) {
        infer(g.ss_n_layers, ss_layers, "ss_n_layers", notes);
        if (auto k = dim(s, ss + "0.conv.conv.weight", 5, 3); k && *k % 2 == 1)
            infer(g.ss_unfold_radius, (*k - 1) / 2, "ss_unfold_radius", notes);
    }
    std::vector<int> widths;
    for (int i = 0;; ++i) {
        auto w = dim(s, ts + "convs." + std::to_string(i) + ".conv.weight", 5, 1);
        if (!w) break;
        widths.push_back(int(std::clamp<int64_t>(*w, 0, 1 << 20)));
    }
    if (!widths.empty() && widths != g.ts_conv_out_channels) {
        notes.push_back("ts_conv_out_channels " + ints_str(widths) + " (config: " +
                        ints_str(g.ts_conv_out_channels) + ")");
        g.ts_conv_out_channels = widths;
    }
    if (notes_out) notes_out->insert(notes_out->end(), notes.begin(), notes.end());
    return g;
}

DiscriminatorConfig DiscriminatorConfig::from_shapes(const TensorShapes& s, DiscriminatorConfig d,
                                                     std::vector<std::string>* notes_out) {
    std::vector<std::string> notes;
    infer(d.coord_num_dir, dim(s, "coord_linear.1.weight", 2, 0), "coord_num_dir", notes);
    // The linear head is 512 x d_extra_multiplier wide; the input conv also scales with the
    // channel multiplier (as StyleGAN2's channel table).
    if (auto linear = dim(s, "final_linear.0.weight", 2, 0)) {
        const double m = double(*linear) / 512.0;
        if (std::abs(m - d.d_extra_multiplier) > 1e-9) {
            notes.push_back("d_extra_multiplier " + std::to_string(m) + " (config: " +
                            std::to_string(d.d_extra_multiplier) + ")");
            d.d_extra_multiplier = m;
        }
    }
    if (auto first = dim(s, "convs.0.0.weight", 4, 0)) {
        DiscriminatorConfig probe = d;
        if (probe.channels_at(1 << probe.log_size()) != *first) {
            for (int cm = 1; cm <= 16; ++cm) {
                probe.channel_multiplier = cm;
                if (probe.channels_at(1 << probe.log_size()) == *first) {
                    infer(d.channel_multiplier, cm, "discriminator channel_multiplier", notes);
                    break;
                }
            }
        }
    }
    if (notes_out) notes_out->insert(notes_out->end(), notes.begin(), notes.end());
    return d;
}

}  // namespace igan
