// `igan forward`: the networks on explicit inputs, named as in the golden reference set
// (tests/data/golden/README.md): cases a/b (single forward), b_mix (style mixing), c (patchwise
// infinite canvas), d (discriminator), e (training-mode forward and losses).
#include "igan/forward.h"

#include <set>

#include "core/error.h"
#include "igan/version.h"
#include "io/safetensors.h"
#include "model/coords.h"
#include "model/losses.h"
#include "weights/model_file.h"

namespace igan {

namespace {

using Tensors = std::map<std::string, torch::Tensor>;

struct Case {
    const Tensors& in;
    Tensors& out;
    std::string prefix;
    bool has(const std::string& k) const { return in.count(prefix + k) > 0; }
    torch::Tensor get(const std::string& k) const {
        auto it = in.find(prefix + k);
        if (it == in.end()) throw Error("inputs: missing " + prefix + k);
        return it->second;
    }
    void put(const std::string& k, const torch::Tensor& t) {
        out[prefix + k] = t.detach().to(torch::kCPU).contiguous();
    }
    std::vector<torch::Tensor> noises(int n) const {
        std::vector<torch::Tensor> v;
        for (int i = 0; i < n; ++i) v.push_back(get("noises." + std::to_string(i)));
        return v;
    }
};

void put_scalar(Case& c, const std::string& k, const torch::Tensor& t) { c.put(k, t.reshape({1})); }

void run_generator_case(Generator& g, Case& c) {
    const int64_t inject = c.has("inject_index") ? c.get("inject_index").item<int64_t>() : -1;
    FeatureMap feats;
    auto r = g->forward(c.get("global_latent"), c.get("local_latent"), c.get("coords"),
                        c.noises(g->config.num_ts_convs()), inject, &feats);
    c.put("style", g->texture_synthesizer->mapping(c.get("global_latent").select(1, 0)));
    c.put("styles", r.styles);
    c.put("structure_latent", r.structure_latent);
    c.put("gen", r.image);
    for (const auto& [name, t] : feats) c.put("feat." + name, t);
}

// Patch by patch over explicit canvas inputs, as the original InfiniteGenerationManager.
void run_canvas_case(Generator& g, Case& c) {
    const auto& cfg = g->config;
    const int64_t n = cfg.ts_input_size, r = cfg.ss_margin();
    auto z = c.get("local_latent"), coords = c.get("meta_coords");
    auto starts = c.get("start_pts_mesh_z"), feat_starts = c.get("start_pts_mesh_outfeats");
    const auto full = c.noises(cfg.num_ts_convs());
    const auto sizes = ts_output_sizes(cfg, n);
    const int64_t last = cfg.num_ts_convs() - 1;
    auto canvas = torch::zeros({1, 3, full[last].size(2), full[last].size(3)});
    std::vector<torch::Tensor> patches;
    for (int64_t i = 0; i < starts.size(0); ++i) {
        for (int64_t j = 0; j < starts.size(1); ++j) {
            const int64_t zy = starts[i][j][0].item<int64_t>() - r;
            const int64_t zx = starts[i][j][1].item<int64_t>() - r;
            std::vector<torch::Tensor> noises;
            for (int k = 0; k <= last; ++k) {
                const int64_t fy = feat_starts[k][i][j][0].item<int64_t>();
                const int64_t fx = feat_starts[k][i][j][1].item<int64_t>();
                noises.push_back(full[k].narrow(2, fy, sizes[k]).narrow(3, fx, sizes[k]));
            }
            auto side = n + 2 * r;
            auto out = g->forward(c.get("global_latent"), z.narrow(2, zy, side).narrow(3, zx, side),
                                  coords.narrow(2, zy, side).narrow(3, zx, side), noises);
            const int64_t py = feat_starts[last][i][j][0].item<int64_t>();
            const int64_t px = feat_starts[last][i][j][1].item<int64_t>();
            canvas.narrow(2, py, sizes[last]).narrow(3, px, sizes[last]).copy_(out.image);
            patches.push_back(out.image);
        }
    }
    c.put("meta_img", canvas);
    c.put("patches", torch::cat(patches, 0));
}

void put_discriminator(Case& c, const std::string& k, const DiscriminatorOutput& d) {
    c.put(k + "d_patch", d.d_patch);
    c.put(k + "ac_coords_pred", d.ac_coords_pred);
}

void run_discriminator_case(Discriminator& d, Case& c) {
    auto image = c.get("image");
    auto full = d->forward(image);
    put_discriminator(c, "", full);
    c.put("feat.convs", full.trunk);
    c.put("feat.final_conv", full.final_conv);
    put_discriminator(c, "single.", d->forward(image.narrow(0, 0, 1)));
}

// Training mode: pairs (2k, 2k+1) share z_g and coordinates; labels stay unpaired.
void run_training_case(Generator& g, Discriminator* d, Case& c, const Tensors& inputs) {
    const auto& cfg = g->config;
    auto tc = training_coords(cfg, c.get("coords_x_st"), c.get("coords_y_st"),
                              c.get("coords_perturb"));
    c.put("coords_grid_indices", tc.grid_indices);
    c.put("coords_unpaired", tc.coords);
    c.put("ac_coords", tc.ac_label);
    auto coords = tc.coords.clone();
    auto z_g = c.get("global_latent").clone();
    for (int64_t i = 0; i + 1 < coords.size(0); i += 2) {
        coords[i + 1].copy_(coords[i]);
        z_g[i + 1].copy_(z_g[i]);
    }
    c.put("coords", coords);
    auto z_l = c.get("local_latent");
    auto r = g->forward(z_g, z_l, coords, c.noises(cfg.num_ts_convs()),
                        c.get("inject_index").item<int64_t>());
    c.put("styles", r.styles);
    c.put("structure_latent", r.structure_latent);
    c.put("gen", r.image);
    auto div = diversity_loss(z_l, r.structure_latent, DiversityForm::kAngular);
    put_scalar(c, "diversity_z_loss", div);
    put_scalar(c, "diversity_z_loss_iso", div);
    put_scalar(c, "diversity_z_loss_iso_odd3",
               diversity_loss(z_l.narrow(0, 0, 3), r.structure_latent.narrow(0, 0, 3),
                              DiversityForm::kAngular));
    if (c.has("coord_ac_pred_iso"))
        put_scalar(c, "coord_ac_loss_iso", coord_ac_loss(c.get("coord_ac_pred_iso"), tc.ac_label));
    if (!d) return;
    auto fake = (*d)->forward(r.image);
    put_discriminator(c, "fake.", fake);
    put_scalar(c, "coord_ac_loss_fake", coord_ac_loss(fake.ac_coords_pred, tc.ac_label));
    put_scalar(c, "g_nonsaturating_loss", g_nonsaturating_loss(fake.d_patch));
    auto real_it = inputs.find("d.image");
    if (real_it != inputs.end())
        put_scalar(c, "d_logistic_loss",
                   d_logistic_loss((*d)->forward(real_it->second).d_patch, fake.d_patch));
}

}  // namespace

std::vector<std::string> run_forward(const ForwardRequest& req) {
    torch::NoGradGuard no_grad;
    auto loaded = load_generator(req.model, req.config_override);
    Generator g = loaded.generator;
    std::unique_ptr<Discriminator> d;
    if (!req.discriminator.empty())
        d = std::make_unique<Discriminator>(load_discriminator(req.discriminator, loaded.config));
    const Tensors inputs = read_safetensors(req.inputs).tensors;
    std::set<std::string> prefixes;
    for (const auto& [k, v] : inputs) prefixes.insert(k.substr(0, k.find('.')));
    Tensors outputs;
    for (const auto& p : prefixes) {
        Case c{inputs, outputs, p + "."};
        if (c.has("meta_coords")) {
            run_canvas_case(g, c);
        } else if (c.has("coords_x_st") && c.has("inject_index") && !c.has("coords")) {
            run_training_case(g, d.get(), c, inputs);
        } else if (c.has("global_latent") && c.has("coords")) {
            run_generator_case(g, c);
        } else if (c.has("image") && d) {
            run_discriminator_case(*d, c);
        } else if (p == "b_mix") {
            Case mix{inputs, outputs, "b_mix."};
            Tensors merged = inputs;
            for (const auto& k : {"local_latent", "coords"}) merged["b_mix." + std::string(k)] = inputs.at("b." + std::string(k));
            for (int i = 0; i < g->config.num_ts_convs(); ++i)
                merged["b_mix.noises." + std::to_string(i)] = inputs.at("b.noises." + std::to_string(i));
            Case m{merged, outputs, "b_mix."};
            run_generator_case(g, m);
        }
    }
    if (outputs.empty()) throw Error(req.inputs + ": no case with known inputs found");
    TensorFile file;
    file.tensors = outputs;
    file.metadata["igan.version"] = version_string();
    write_safetensors(req.out, file);
    std::vector<std::string> names;
    for (const auto& [k, v] : outputs) names.push_back(k);
    return names;
}

}  // namespace igan
