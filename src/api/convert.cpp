// `igan convert`: checkpoints of the original implementation (hubert0527/infinityGAN @ a9b45dd,
// train.py: torch.save({"iter", "best_fid", "g", "d", "g_ema", "g_optim", "d_optim",
// "mean_path_lengths"})) to igan safetensors. Keys are the original state-dict keys (docs/convert.md), so
// tensors are copied unchanged; widths are read off their shapes and the rest of the geometry
// comes from the config (the original YAML, a JSON config or a preset).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "igan/igan.h"
#include "features/inception_v3.h"
#include "features/keras.h"
#include "features/mobilenet_v2.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "io/tfjs.h"
#include "io/torch_pickle.h"
#include "model/config.h"
#include "model/discriminator.h"
#include "model/generator.h"
#include "model/state.h"
#include "weights/model_file.h"

namespace igan {

namespace {

using nlohmann::json;
using Kind = PyObject::Kind;
using Shapes = std::map<std::string, std::vector<int64_t>>;

constexpr size_t kMaxConfigBytes = 1 << 20;

std::string join(const std::vector<std::string>& parts, const char* sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
    return out;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::ostringstream s;
    s << c10::IntArrayRef(shape);
    return s.str();
}

// ---------------------------------------------------------------------------------------------
// The original configs/model/*.yaml: top-level sections of flat `key: value` lines. This reads
// exactly that subset (scalars, flow lists [a, b], block lists "- a", comments) and rejects
// anything deeper, so a config never silently means something else.

std::string trim(const std::string& s) {
    const size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return "";
    const size_t e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
}

class YamlReader {
public:
    YamlReader(const std::string& text, const std::string& path) : text_(text), path_(path) {}

    json parse() {
        json root = json::object();
        json* section = nullptr;  // the mapping that indented lines belong to
        json* pending = nullptr;  // a key without a value: block-list items may follow
        int section_indent = -1;
        std::istringstream in(text_);
        std::string raw;
        while (std::getline(in, raw)) {
            ++line_;
            if (!raw.empty() && raw.back() == '\r') raw.pop_back();
            const std::string content = trim(strip_comment(raw));
            if (content.empty() || content == "---" || content == "...") continue;
            const size_t indent = raw.find_first_not_of(' ');
            if (raw[indent] == '\t') fail("tabs are not allowed for indentation");
            if (content[0] == '-' && (content.size() == 1 || content[1] == ' ')) {
                if (!pending || indent == 0) fail("a list item without a key above it");
                if (pending->is_null()) *pending = json::array();
                pending->push_back(scalar(trim(content.substr(1))));
                continue;
            }
            const size_t colon = key_end(content);
            std::string key = trim(content.substr(0, colon));
            const std::string value = trim(content.substr(colon + 1));
            if (key.size() >= 2 && (key[0] == '"' || key[0] == '\'') && key.back() == key[0])
                key = key.substr(1, key.size() - 2);
            if (key.empty()) fail("empty key");
            if (indent == 0) {
                section_indent = -1;
                if (value.empty()) {
                    root[key] = json::object();
                    section = &root[key];
                    pending = nullptr;
                } else {
                    root[key] = scalar(value);
                    section = pending = nullptr;
                }
                continue;
            }
            if (!section) fail("indented line outside a section");
            if (section_indent < 0) section_indent = int(indent);
            if (int(indent) != section_indent)
                fail("nested mappings are not supported (only `section:` then `  key: value`)");
            if (section->contains(key)) fail("duplicate key '" + key + "'");
            (*section)[key] = value.empty() ? json() : scalar(value);
            pending = value.empty() ? &(*section)[key] : nullptr;
        }
        return root;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw Error(path_ + ":" + std::to_string(line_) + ": " + what +
                    " (igan reads the flat YAML of the original configs/model/*.yaml)");
    }

    // A '#' starts a comment outside quotes when it begins the line or follows whitespace.
    static std::string strip_comment(const std::string& line) {
        char quote = 0;
        for (size_t i = 0; i < line.size(); ++i) {
            const char c = line[i];
            if (quote) {
                if (c == quote) quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
                return line.substr(0, i);
            }
        }
        return line;
    }

    size_t key_end(const std::string& content) const {
        char quote = 0;
        for (size_t i = 0; i < content.size(); ++i) {
            const char c = content[i];
            if (quote) {
                if (c == quote) quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == ':' && (i + 1 == content.size() || content[i + 1] == ' ')) {
                return i;
            }
        }
        fail("expected `key: value`");
    }

    json scalar(const std::string& v) const {
        if (v.empty()) return json();
        if (v[0] == '{') fail("flow mappings are not supported");
        if (v[0] == '[') {
            if (v.back() != ']') fail("unterminated list");
            json list = json::array();
            const std::string body = trim(v.substr(1, v.size() - 2));
            if (body.empty()) return list;
            std::string item;
            char quote = 0;
            for (char c : body + ",") {
                if (quote) {
                    if (c == quote) quote = 0;
                    item += c;
                } else if (c == '"' || c == '\'') {
                    quote = c;
                    item += c;
                } else if (c == '[' || c == '{') {
                    fail("nested lists are not supported");
                } else if (c == ',') {
                    list.push_back(scalar(trim(item)));
                    item.clear();
                } else {
                    item += c;
                }
            }
            return list;
        }
        if (v[0] == '"' || v[0] == '\'') {
            if (v.size() < 2 || v.back() != v[0]) fail("unterminated string");
            std::string s = v.substr(1, v.size() - 2), out;
            for (size_t i = 0; i < s.size(); ++i) {
                if (v[0] == '"' && s[i] == '\\' && i + 1 < s.size()) {
                    const char e = s[++i];
                    out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
                } else if (v[0] == '\'' && s[i] == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
                    out += s[++i];
                } else {
                    out += s[i];
                }
            }
            return out;
        }
        static const char* kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
        static const char* kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
        for (const char* t : kTrue)
            if (v == t) return true;
        for (const char* f : kFalse)
            if (v == f) return false;
        if (v == "~" || v == "null" || v == "Null" || v == "NULL") return json();
        const char* begin = v.c_str();
        char* end = nullptr;
        errno = 0;
        const long long i = std::strtoll(begin, &end, 10);
        if (end && *end == 0 && errno == 0) return int64_t(i);
        if (v.find_first_of("0123456789") != std::string::npos &&
            v.find_first_not_of("+-.0123456789eE") == std::string::npos) {
            const double d = std::strtod(begin, &end);
            if (end && *end == 0 && std::isfinite(d)) return d;
        }
        return v;
    }

    const std::string& text_;
    std::string path_;
    int line_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The config the user named, before the weights refine it.

struct BaseConfig {
    ModelConfig config;
    json train_params;  // the original hyper-parameters, when the config file has them
    std::string source;
};

bool has_suffix(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

BaseConfig load_base_config(const std::string& spec) {
    BaseConfig base;
    const auto presets = preset_names();
    if (std::find(presets.begin(), presets.end(), spec) != presets.end()) {
        base.config = preset_config(spec);
        base.source = "the " + spec + " preset";
        return base;
    }
    std::ifstream in(spec, std::ios::binary);
    if (!in)
        throw UsageError("--config '" + spec + "': not a preset (" + join(presets, ", ") +
                         ") and not a readable file");
    std::string text(kMaxConfigBytes + 1, '\0');
    in.read(&text[0], std::streamsize(text.size()));
    text.resize(size_t(in.gcount()));
    if (text.size() > kMaxConfigBytes) throw Error(spec + ": larger than 1 MB, not a config file");
    base.source = spec;

    const size_t first = text.find_first_not_of(" \t\r\n");
    const bool is_json = !has_suffix(spec, ".yaml") && !has_suffix(spec, ".yml") &&
                         first != std::string::npos && text[first] == '{';
    json root;
    if (is_json) {
        try {
            root = json::parse(text);
        } catch (const json::exception& e) {
            throw Error(spec + ": not valid JSON: " + e.what());
        }
        base.config = load_model_config(spec);
    } else {
        root = YamlReader(text, spec).parse();
        if (!root.contains("train_params") || !root["train_params"].is_object())
            throw Error(spec + ": no train_params section (expected an original configs/model/*.yaml)");
        try {
            base.config = model_config_from_string(json{{"train_params", root["train_params"]}}.dump());
        } catch (const Error& e) {
            throw Error(spec + ": " + e.what());
        }
    }
    if (root.is_object() && root.contains("train_params") && root["train_params"].is_object())
        base.train_params = root["train_params"];
    const json& p = base.train_params;
    if (p.is_object()) {
        auto flag = [&](const char* key, bool fallback) {
            return p.contains(key) && p[key].is_boolean() ? p[key].get<bool>() : fallback;
        };
        if (flag("styleGAN2_baseline", false) || !flag("use_ss", true))
            throw Error(spec + ": describes the StyleGAN2 baseline (no structure synthesizer), "
                               "which igan does not implement");
        if (p.contains("coord_num_dir") && p["coord_num_dir"].is_number_integer())
            base.config.discriminator.coord_num_dir = p["coord_num_dir"].get<int>();
    }
    return base;
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
Shapes shapes_of(const TorchCheckpoint& ck, const PyObject* dict) {
    Shapes out;
    if (!dict || dict->kind != Kind::kDict) return out;
    const bool strip = all_have_module_prefix(*dict);
    for (const auto& [k, v] : dict->entries)
        if (k->is_string() && v->kind == Kind::kTensor)
            out[strip_prefix(k->text, strip)] = ck.tensor_info(*v).sizes;
    return out;
}

// ---------------------------------------------------------------------------------------------
// Widths from shapes.

std::optional<int64_t> dim(const Shapes& s, const std::string& key, size_t ndim, size_t d) {
    auto it = s.find(key);
    if (it == s.end() || it->second.size() != ndim) return std::nullopt;
    return it->second[d];
}

template <typename T>
void infer(T& field, std::optional<int64_t> value, const char* name, std::vector<std::string>& notes,
           bool& changed, int64_t min = 1) {
    if (!value || *value < min || *value > (int64_t(1) << 20)) return;
    if (int64_t(field) != *value) {
        notes.push_back(std::string(name) + " " + std::to_string(*value) + " (config: " +
                        std::to_string(int64_t(field)) + ")");
        field = T(*value);
        changed = true;
    }
}

std::string ints_str(const std::vector<int>& v) {
    std::vector<std::string> parts;
    for (int i : v) parts.push_back(std::to_string(i));
    return "[" + join(parts, ", ") + "]";
}

void infer_generator(GeneratorConfig& g, const Shapes& s, std::vector<std::string>& notes, bool& changed) {
    const std::string ss = "structure_synthesizer.implicit_model.conv_stack.";
    const std::string ts = "texture_synthesizer.";
    int n_mlp = 0;
    while (s.count(ts + "mapping." + std::to_string(n_mlp + 1) + ".weight")) ++n_mlp;
    if (n_mlp > 0 || s.count(ts + "convs.0.conv.weight")) infer(g.n_mlp, n_mlp, "n_mlp", notes, changed, 0);
    infer(g.global_latent_dim,
          n_mlp > 0 ? dim(s, ts + "mapping.1.weight", 2, 1) : dim(s, ts + "convs.0.conv.modulation.weight", 2, 1),
          "global_latent_dim", notes, changed);
    infer(g.local_latent_dim, dim(s, ts + "convs.0.conv.weight", 5, 2), "local_latent_dim", notes, changed);
    int ss_layers = 0;
    while (s.count(ss + std::to_string(ss_layers) + ".conv.conv.weight")) ++ss_layers;
    if (ss_layers > 0) {
        infer(g.ss_n_layers, ss_layers, "ss_n_layers", notes, changed);
        if (auto k = dim(s, ss + "0.conv.conv.weight", 5, 3); k && *k % 2 == 1)
            infer(g.ss_unfold_radius, (*k - 1) / 2, "ss_unfold_radius", notes, changed);
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
        changed = true;
    }
}

void infer_discriminator(DiscriminatorConfig& d, const Shapes& s, std::vector<std::string>& notes,
                         bool& changed) {
    infer(d.coord_num_dir, dim(s, "coord_linear.1.weight", 2, 0), "coord_num_dir", notes, changed);
    // The linear head is 512 x d_extra_multiplier wide; the input conv also scales with the
    // channel multiplier (as StyleGAN2's channel table).
    if (auto linear = dim(s, "final_linear.0.weight", 2, 0)) {
        const double m = double(*linear) / 512.0;
        if (std::abs(m - d.d_extra_multiplier) > 1e-9) {
            notes.push_back("d_extra_multiplier " + std::to_string(m) + " (config: " +
                            std::to_string(d.d_extra_multiplier) + ")");
            d.d_extra_multiplier = m;
            changed = true;
        }
    }
    if (auto first = dim(s, "convs.0.0.weight", 4, 0)) {
        DiscriminatorConfig probe = d;
        if (probe.channels_at(1 << probe.log_size()) != *first) {
            for (int cm = 1; cm <= 16; ++cm) {
                probe.channel_multiplier = cm;
                if (probe.channels_at(1 << probe.log_size()) == *first) {
                    infer(d.channel_multiplier, cm, "discriminator channel_multiplier", notes, changed);
                    break;
                }
            }
        }
    }
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
    const BaseConfig base = load_base_config(request.config);
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
    Shapes g_shapes, d_shapes, own;
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
    infer_generator(config.generator, g_shapes, inferred, changed);

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
    infer_discriminator(config.discriminator, d_shapes, inferred, changed);
    if (changed) config.name = "custom";
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
    for (const auto& [key, target] : targets) {
        auto it = own.find(key);
        if (it == own.end()) {
            problems.push_back("missing " + key + " " + shape_str(target.sizes().vec()));
        } else if (it->second != target.sizes().vec()) {
            problems.push_back("wrong shape for " + key + ": file has " + shape_str(it->second) +
                               ", model expects " + shape_str(target.sizes().vec()));
        } else if (!at::isFloatingType(ck.tensor_info(*tensors.at(key)).dtype)) {
            problems.push_back("wrong dtype for " + key + ": " +
                               c10::toString(ck.tensor_info(*tensors.at(key)).dtype) +
                               ", expected a floating-point tensor");
        }
    }
    for (const auto& [key, shape] : own)
        if (!targets.count(key)) problems.push_back("unexpected " + key + " " + shape_str(shape));
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
