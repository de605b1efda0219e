// `igan convert`: checkpoints of the original implementation (hubert0527/infinityGAN @ a9b45dd,
// train.py: torch.save({"iter", "best_fid", "g", "d", "g_ema", "g_optim", "d_optim",
// "mean_path_lengths"})) to igan safetensors. Keys are the original state-dict keys (docs/convert.md), so
// tensors are copied unchanged; widths are read off their shapes (GeneratorConfig::from_shapes)
// and the rest of the geometry comes from the config (weights/config_file.h). Also TF.js feature
// networks (features/).
#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "features/inception_v3.h"
#include "features/keras.h"
#include "features/mobilenet_v2.h"
#include "igan/convert.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/tfjs.h"
#include "io/torch_pickle.h"
#include "model/config.h"
#include "model/discriminator.h"
#include "model/generator.h"
#include "model/state.h"
#include "weights/config_file.h"
#include "weights/model_file.h"

namespace igan {

namespace {

using nlohmann::json;
using Kind = PyObject::Kind;

std::string join(const std::vector<std::string>& parts, const char* sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
    return out;
}

// ---------------------------------------------------------------------------------------------
// State dicts inside the checkpoint.

bool is_state_dict(const PyObject& v) {
    if (v.kind != Kind::kDict || v.entries.empty()) return false;
    for (const auto& [k, t] : v.entries)
        if (!k->is_string() || t->kind != Kind::kTensor) return false;
    return true;
}

bool looks_like_generator(const PyObject& v) {
    for (const auto& [k, t] : v.entries)
        if (k->is_string() && k->text.find("texture_synthesizer.") != std::string::npos) return true;
    return false;
}

std::string top_level_keys(const PyObject& root) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : root.entries) {
        if (keys.size() == 20) {
            keys.push_back("...");
            break;
        }
        keys.push_back(k->is_string() ? k->text : kind_name(k->kind));
    }
    return join(keys, ", ");
}

// The state dict for `part` (g_ema, g, d): train.py's dict, or a bare state dict of that kind.
const PyObject* find_part(const TorchCheckpoint& ck, const std::string& part, bool required,
                          std::vector<std::string>* notes) {
    const PyObject& root = ck.root();
    if (root.kind != Kind::kDict)
        throw Error(ck.name() + ": holds a " + kind_name(root.kind) + ", not a dict of state dicts");
    if (const PyObject* p = root.get(part)) return p;
    const bool want_g = part != "d";
    if (is_state_dict(root) && looks_like_generator(root) == want_g) {
        if (notes) notes->push_back("the file is a bare state dict; used it as '" + part + "'");
        return &root;
    }
    if (!required) return nullptr;
    if (is_state_dict(root))
        throw Error(ck.name() + ": holds a bare state dict of a " +
                    (want_g ? "discriminator" : "generator") + ", not '" + part +
                    "'; choose --part " + (want_g ? "d" : "g_ema"));
    throw Error(ck.name() + ": no '" + part + "' in the checkpoint (it holds: " +
                top_level_keys(root) + "); choose one with --part g_ema, g or d");
}

// `module.` from DataParallel, when every key has it (the original saves unwrapped modules).
std::string strip_prefix(const std::string& key, bool strip) { return strip ? key.substr(7) : key; }

bool all_have_module_prefix(const PyObject& dict) {
    for (const auto& [k, v] : dict.entries)
        if (!k->is_string() || k->text.rfind("module.", 0) != 0) return false;
    return !dict.entries.empty();
}

// Shapes of the tensors of a state dict; other entries are skipped (used to infer widths).
TensorShapes shapes_of(const TorchCheckpoint& ck, const PyObject* dict) {
    TensorShapes out;
    if (!dict || dict->kind != Kind::kDict) return out;
    const bool strip = all_have_module_prefix(*dict);
    for (const auto& [k, v] : dict->entries)
        if (k->is_string() && v->kind == Kind::kTensor)
            out[strip_prefix(k->text, strip)] = ck.tensor_info(*v).sizes;
    return out;
}

// ---------------------------------------------------------------------------------------------
// Sizes.

std::string ints_str(const std::vector<int>& v) {
    std::vector<std::string> parts;
    for (int i : v) parts.push_back(std::to_string(i));
    return "[" + join(parts, ", ") + "]";
}

// The number of texture convs whose geometry gives `patch` pixels, or 0.
int convs_for_patch(GeneratorConfig g, int patch) {
    for (int n = 2; n <= 16; n += 2) {
        g.ts_conv_out_channels.assign(size_t(n), 0);
        if (g.patch_size() == patch) return n;
    }
    return 0;
}

// A rough parameter count for a config, to refuse building absurd models (a hostile file's
// shapes could otherwise ask for terabytes) before anything is allocated.
double approx_parameters(const ModelConfig& c, bool generator) {
    if (generator) {
        const auto& g = c.generator;
        const double L = g.local_latent_dim, G = g.global_latent_dim, k = 2 * g.ss_unfold_radius + 1;
        double n = g.ss_n_layers * ((L + 3) * (L * k * k + G)) + g.n_mlp * G * G;
        const auto in = g.ts_conv_in_channels();
        for (int i = 0; i < g.num_ts_convs(); ++i)
            n += double(in[i]) * (9.0 * g.ts_conv_out_channels[i] + G + 3);
        return n;
    }
    const auto& d = c.discriminator;
    double n = 0;
    for (int i = d.log_size(); i > 2; --i) {
        const double a = d.channels_at(1 << i), b = d.channels_at(1 << (i - 1));
        n += a * (9 * a + 10 * b);
    }
    const double ch = d.channels_at(4), fs = d.final_size();
    return n + ch * (9 * (ch + 1) + 2 * ch * fs * fs);
}

// Where a TF.js model came from, for the weights' metadata: the npm package.json above it (nsfwjs
// ships its models under package/dist/models/NAME/), else the path alone.
std::string tfjs_origin(const std::string& in) {
    namespace fs = std::filesystem;
    const fs::path model = fs::absolute(in);
    fs::path dir = fs::is_directory(model) ? model : model.parent_path();
    for (int up = 0; up < 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
        const fs::path manifest = dir / "package.json";
        if (!fs::is_regular_file(manifest)) continue;
        const auto j = json::parse(read_file(manifest.string()), nullptr, false);
        if (!j.is_object() || !j.contains("name")) continue;  // nested {"type": ...} stubs
        return j.value("name", "?") + "@" + j.value("version", "?") + " (" +
               j.value("license", "licence unknown") + "), " +
               fs::relative(model, dir).generic_string();
    }
    return "TF.js model " + model.filename().string();
}

ConvertResult convert_tfjs(const ConvertRequest& request) {
    const TfjsModel model = read_tfjs_model(request.in);
    // Keras names InceptionV3's blocks mixed0..mixed10; anything else is taken for MobileNetV2.
    const bool inception = model.format == "layers-model" &&
                           KerasGraph(model.topology_json, request.in).find("mixed5") != nullptr;
    const std::string origin = tfjs_origin(request.in);
    const TensorFile file = inception
                                ? inception_v3_mixed5_from_tfjs(model, origin, request.in)
                                : mobilenet_v2_from_tfjs(model, origin, request.in);
    write_safetensors(request.out, file);
    ConvertResult result;
    result.arch = file.metadata.at("igan.arch");
    result.config_json = file.metadata.at("igan.config");
    for (const auto& [name, t] : file.tensors) {
        ++result.tensors;
        result.values += t.numel();
    }
    result.notes.push_back("from " + file.metadata.at("igan.origin") + ": " + model.format + ", " +
                           std::to_string(model.weights.size()) + " weights (" +
                           model.weights.front().stored_dtype + "), " +
                           (inception ? "input to mixed5" : "blocks 0-10") +
                           " kept, batch norm folded");
    return result;
}

}  // namespace

ConvertResult convert_checkpoint(const ConvertRequest& request) {
    if (request.from == "tfjs") return convert_tfjs(request);
    if (request.from != "pth")
        throw UsageError("--from must be pth or tfjs, got '" + request.from + "'");
    const std::string& part = request.part;
    if (part != "g_ema" && part != "g" && part != "d")
        throw UsageError("--part must be g_ema, g or d, got '" + part + "'");
    if (request.in.empty() || request.out.empty()) throw UsageError("convert needs IN and OUT");
    const ConfigSource base = read_config(request.config);
    const TorchCheckpoint ck = read_torch_checkpoint(request.in);
    const bool is_generator = part != "d";

    ConvertResult result;
    auto& notes = result.notes;
    const PyObject* state = find_part(ck, part, true, &notes);
    if (state->kind != Kind::kDict)
        throw Error(request.in + ": '" + part + "' is a " + kind_name(state->kind) + ", not a state dict");

    // The tensors of the part, strictly: string keys, tensor values, no duplicates.
    const bool strip = all_have_module_prefix(*state);
    if (strip) notes.push_back("removed the DataParallel prefix 'module.' from every key");
    std::vector<std::string> problems;
    std::map<std::string, const PyObject*> tensors;
    for (const auto& [k, v] : state->entries) {
        if (!k->is_string()) {
            problems.push_back(std::string("a key that is a ") + kind_name(k->kind) + ", not a string");
            continue;
        }
        const std::string key = strip_prefix(k->text, strip);
        if (v->kind != Kind::kTensor) {
            problems.push_back(key + " is a " + kind_name(v->kind) + ", not a tensor");
        } else if (!tensors.emplace(key, v).second) {
            problems.push_back("duplicate key " + key);
        }
    }

    // Widths from the shapes: of this part and, for a complete config, of its sibling.
    TensorShapes g_shapes, d_shapes, own;
    for (const auto& [key, t] : tensors) own[key] = ck.tensor_info(*t).sizes;
    if (is_generator) {
        g_shapes = own;
        d_shapes = shapes_of(ck, find_part(ck, "d", false, nullptr));
    } else {
        d_shapes = own;
        const PyObject* g = find_part(ck, "g_ema", false, nullptr);
        g_shapes = shapes_of(ck, g ? g : find_part(ck, "g", false, nullptr));
    }
    ModelConfig config = base.config;
    std::vector<std::string> inferred;
    bool changed = false;
    config.generator = GeneratorConfig::from_shapes(g_shapes, config.generator, &inferred);

    // The config's patch size (original YAML/JSON) must agree with the generator's depth.
    const json& p = base.train_params;
    if (p.is_object() && p.contains("patch_size") && p["patch_size"].is_number_integer()) {
        const int patch = p["patch_size"].get<int>();
        if (g_shapes.empty() && config.generator.patch_size() != patch) {
            // Only the discriminator is here: size the generator from the config's patch size.
            if (const int n = convs_for_patch(config.generator, patch)) {
                auto& w = config.generator.ts_conv_out_channels;
                w.resize(size_t(n), w.empty() ? 512 : w.back());
                notes.push_back("generator widths are not in the file; assumed " + ints_str(w));
                changed = true;
            }
        }
        if (config.generator.validate().empty() && config.generator.patch_size() != patch)
            problems.push_back("the config's patch_size " + std::to_string(patch) +
                               " does not match the weights (" +
                               std::to_string(config.generator.num_ts_convs()) +
                               " texture convs make " + std::to_string(config.generator.patch_size()) +
                               "-pixel patches): is this the model's config?");
    }
    config.discriminator.patch_size = config.generator.patch_size();
    config.discriminator = DiscriminatorConfig::from_shapes(d_shapes, config.discriminator, &inferred);
    if (changed || !inferred.empty()) config.name = "custom";
    if (!inferred.empty()) notes.push_back("from the weights: " + join(inferred, ", "));
    for (const auto& e : config.validate()) problems.push_back("resolved config: " + e);

    const std::string what = request.in + ": '" + part + "' does not match the InfinityGAN " +
                             (is_generator ? "generator" : "discriminator") + " of " + base.source;
    auto throw_problems = [&] {
        throw Error(what + " (" + std::to_string(problems.size()) + " problems): " + join(problems, "; "));
    };
    if (!problems.empty()) throw_problems();

    int64_t values = 0;
    for (const auto& [key, shape] : own) {
        int64_t n = 1;
        for (int64_t s : shape) n *= s;
        values += n;
    }
    if (approx_parameters(config, is_generator) > 2.0 * double(values) + double(1 << 20))
        throw Error(what + ": the config asks for a model of about " +
                    std::to_string(int64_t(approx_parameters(config, is_generator))) +
                    " parameters, but the checkpoint holds " + std::to_string(values) + " values");

    // Build the module and check every name, shape and dtype before reading any tensor data.
    std::shared_ptr<torch::nn::Module> module;
    if (is_generator) {
        module = Generator(config.generator).ptr();
    } else {
        module = Discriminator(config.discriminator).ptr();
    }
    const auto targets = state_dict(*module);
    std::map<std::string, TensorSpec> stored;
    for (const auto& [key, t] : tensors) {
        const auto& info = ck.tensor_info(*t);
        stored[key] = {info.sizes, info.dtype};
    }
    for (auto& p : state_problems(targets, stored)) problems.push_back(std::move(p));
    if (!problems.empty()) throw_problems();

    std::map<std::string, torch::Tensor> loaded;
    bool converted = false;
    for (const auto& [key, t] : tensors) {
        at::Tensor x = ck.tensor(*t);
        converted |= x.scalar_type() != at::kFloat;
        loaded[key] = x;
    }
    if (converted) notes.push_back("converted tensors to float32");
    load_state_dict(*module, loaded, request.in);

    if (const PyObject* iter = ck.root().get("iter"); iter && iter->kind == Kind::kInt)
        result.step = iter->integer;
    result.arch = is_generator ? kGeneratorArch : kDiscriminatorArch;
    save_module(request.out, *module, config, result.arch, result.step);
    result.config_json = model_config_to_string(config);
    result.tensors = int64_t(targets.size());
    result.values = values;
    return result;
}

}  // namespace igan
