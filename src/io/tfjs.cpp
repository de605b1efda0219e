#include "io/tfjs.h"

#include <cctype>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "io/atomic_file.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "TF.js shards are little-endian");

namespace igan {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// A Keras config nests about ten levels deep; this leaves room and stops runaway input.
constexpr int kMaxDepth = 64;
constexpr int64_t kMaxElements = int64_t(1) << 32;

bool is_ident_start(char c) { return std::isalpha((unsigned char)c) || c == '_' || c == '$'; }
bool is_ident_char(char c) { return is_ident_start(c) || std::isdigit((unsigned char)c); }

size_t skip_space(const std::string& t, size_t i) {
    while (i < t.size() && std::isspace((unsigned char)t[i])) ++i;
    return i;
}

// The literal starting at t[pos] ('{' or '['), translated token by token (minified JavaScript:
// double-quoted strings, bare or quoted keys, numbers, !0/!1, null).
std::string js_literal_to_json(const std::string& t, size_t pos, const std::string& source) {
    auto fail = [&](size_t at, const std::string& what) -> Error {
        return Error(source + ": " + what + " at byte " + std::to_string(at) +
                     " (expected a plain JavaScript object literal)");
    };
    std::string out;
    int depth = 0;
    size_t i = pos;
    do {
        i = skip_space(t, i);
        if (i >= t.size()) throw fail(i, "unterminated literal");
        const char c = t[i];
        if (c == '{' || c == '[') {
            if (++depth > kMaxDepth) throw fail(i, "nesting too deep");
            out += c;
            ++i;
        } else if (c == '}' || c == ']') {
            --depth;
            out += c;
            ++i;
        } else if (c == ',' || c == ':') {
            out += c;
            ++i;
        } else if (c == '"') {
            const size_t start = i++;
            while (i < t.size() && t[i] != '"') i += t[i] == '\\' ? 2 : 1;
            if (i >= t.size()) throw fail(start, "unterminated string");
            out.append(t, start, ++i - start);
        } else if (c == '!' && i + 1 < t.size() && (t[i + 1] == '0' || t[i + 1] == '1')) {
            out += t[i + 1] == '0' ? "true" : "false";
            i += 2;
        } else if (std::isdigit((unsigned char)c) || c == '-' || c == '.') {
            const size_t start = i;
            while (i < t.size() &&
                   (std::isdigit((unsigned char)t[i]) || std::strchr("+-.eE", t[i])))
                ++i;
            std::string num = t.substr(start, i - start);
            const size_t dot = num.find('.');
            if (dot != std::string::npos &&
                (dot == 0 || !std::isdigit((unsigned char)num[dot - 1])))
                num.insert(dot, "0");  // .5 -> 0.5, -.5 -> -0.5
            if (skip_space(t, i) < t.size() && t[skip_space(t, i)] == ':') num = '"' + num + '"';
            out += num;
        } else if (is_ident_start(c)) {
            const size_t start = i;
            while (i < t.size() && is_ident_char(t[i])) ++i;
            const std::string word = t.substr(start, i - start);
            if (skip_space(t, i) < t.size() && t[skip_space(t, i)] == ':') {
                out += '"' + word + '"';
            } else if (word == "null" || word == "true" || word == "false") {
                out += word;
            } else {
                throw fail(start, "unsupported value '" + word.substr(0, 40) + "'");
            }
        } else {
            throw fail(i, std::string("unexpected character '") + c + "'");
        }
    } while (depth > 0);
    return out;
}

// The text after the first `.exports=` followed by `first` (a browserify module's export).
size_t find_export(const std::string& text, char first, const std::string& source) {
    const std::string key = std::string(".exports=") + first;
    const size_t at = text.find(key);
    if (at == std::string::npos)
        throw Error(source + ": no `exports=" + first +
                    "...` in this file (not a TF.js model bundle as nsfwjs ships them)");
    return at + key.size() - 1;
}

std::string base64_decode(const std::string& text, size_t begin, size_t end,
                          const std::string& source) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    while (end > begin && text[end - 1] == '=') --end;
    std::string out;
    out.reserve((end - begin) * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = begin; i < end; ++i) {
        const int v = value(text[i]);
        if (v < 0) throw Error(source + ": invalid base64 character at byte " + std::to_string(i));
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((acc >> bits) & 0xFF);
        }
    }
    return out;
}

// A shard's bytes: the file itself, or its nsfwjs bundle P.min.js (a base64 string export).
std::string read_shard(const fs::path& dir, const std::string& name, const std::string& source) {
    if (name.empty() || fs::path(name).is_absolute() || name.find("..") != std::string::npos)
        throw Error(source + ": shard path '" + name + "' must stay inside the model's folder");
    const fs::path plain = dir / name, bundle = dir / (name + ".min.js");
    if (fs::is_regular_file(plain)) return read_file(plain.string());
    if (!fs::is_regular_file(bundle))
        throw Error(source + ": weight shard '" + name + "' not found (looked for " +
                    plain.string() + " and " + bundle.string() + ")");
    const std::string text = read_file(bundle.string());
    const size_t begin = find_export(text, '"', bundle.string()) + 1;
    const size_t end = text.find('"', begin);
    if (end == std::string::npos) throw Error(bundle.string() + ": unterminated string");
    return base64_decode(text, begin, end, bundle.string());
}

int64_t element_count(const Json& shape, const std::string& what) {
    if (!shape.is_array()) throw Error(what + ": shape is not a list");
    int64_t n = 1;
    for (const auto& d : shape) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0)
            throw Error(what + ": shape entries must be non-negative integers");
        const int64_t v = d.get<int64_t>();
        if (v > 0 && n > kMaxElements / v) throw Error(what + ": tensor too large");
        n *= v;
    }
    return n;
}

// One weight from `bytes` at `offset` (advanced), dequantised to float32.
TfjsWeight decode_weight(const Json& spec, const std::string& bytes, size_t& offset,
                         const std::string& source) {
    TfjsWeight w;
    if (!spec.is_object() || !spec.contains("name") || !spec["name"].is_string())
        throw Error(source + ": a weight without a name in weightsManifest");
    w.name = spec["name"].get<std::string>();
    const std::string what = source + ": weight " + w.name;
    const int64_t n = element_count(spec.value("shape", Json()), what);
    const std::string dtype = spec.value("dtype", "");
    if (dtype != "float32")
        throw Error(what + ": dtype '" + dtype + "' is not supported (only float32 weights)");
    double scale = 1, min = 0;
    w.stored_dtype = "float32";
    if (spec.contains("quantization")) {
        const Json& q = spec["quantization"];
        w.stored_dtype = q.value("dtype", "");
        if (q.value("original_dtype", "float32") != "float32")
            throw Error(what + ": quantised from a non-float dtype");
        if (w.stored_dtype == "uint8" || w.stored_dtype == "uint16") {
            if (!q.contains("scale") || !q["scale"].is_number() || !q.contains("min") ||
                !q["min"].is_number())
                throw Error(what + ": " + w.stored_dtype + " quantisation needs scale and min");
            scale = q["scale"].get<double>();
            min = q["min"].get<double>();
        } else if (w.stored_dtype != "float16") {
            throw Error(what + ": quantisation dtype '" + w.stored_dtype + "' is not supported");
        }
    }
    const size_t width = w.stored_dtype == "uint8" ? 1 : w.stored_dtype == "float32" ? 4 : 2;
    if (uint64_t(n) * width > bytes.size() - offset)
        throw Error(what + " needs " + std::to_string(n * width) + " bytes but the shards end " +
                    std::to_string(bytes.size() - offset) + " bytes after its start");
    const char* p = bytes.data() + offset;
    offset += size_t(n) * width;
    std::vector<int64_t> shape = spec["shape"].get<std::vector<int64_t>>();
    at::Tensor out = at::empty({n}, at::kFloat);
    float* o = out.data_ptr<float>();
    if (w.stored_dtype == "float32") {
        std::memcpy(o, p, size_t(n) * 4);
    } else if (w.stored_dtype == "float16") {
        at::Tensor half = at::empty({n}, at::kHalf);
        std::memcpy(half.data_ptr(), p, size_t(n) * 2);
        out = half.to(at::kFloat);
    } else {
        // As tfjs-core's io_utils: q * scale + min in double precision, stored as float32.
        for (int64_t i = 0; i < n; ++i) {
            uint16_t q = 0;
            if (width == 1) {
                q = uint8_t(p[i]);
            } else {
                std::memcpy(&q, p + 2 * i, 2);
            }
            o[i] = float(q * scale + min);
        }
    }
    w.value = out.reshape(shape);
    return w;
}

fs::path find_model_file(const std::string& path) {
    if (!fs::is_directory(path)) return path;
    for (const char* name : {"model.json", "model.min.js"})
        if (fs::is_regular_file(fs::path(path) / name)) return fs::path(path) / name;
    throw Error(path + ": no model.json or model.min.js in this folder");
}

}  // namespace

TfjsModel read_tfjs_model(const std::string& path) {
    const fs::path file = find_model_file(path);
    const std::string source = file.string();
    const std::string text = read_file(source);
    Json j;
    try {
        const bool bundle = source.size() > 3 && source.compare(source.size() - 3, 3, ".js") == 0;
        j = Json::parse(bundle ? js_literal_to_json(text, find_export(text, '{', source), source)
                               : text);
    } catch (const Json::exception& e) {
        throw Error(source + ": not valid TF.js model JSON (" + e.what() + ")");
    }
    if (!j.is_object() || !j.contains("modelTopology") || !j.contains("weightsManifest"))
        throw Error(source + ": not a TF.js model (needs modelTopology and weightsManifest)");
    TfjsModel model;
    const Json& topology = j["modelTopology"];
    model.format = j.value("format", "");
    if (model.format.empty())  // older converters wrote no format field
        model.format = topology.contains("model_config") ? "layers-model"
                       : topology.contains("node")       ? "graph-model"
                                                         : "";
    if (model.format != "layers-model" && model.format != "graph-model")
        throw Error(source + ": unknown TF.js model format '" + model.format + "'");
    model.topology_json = topology.dump();

    const fs::path dir = file.parent_path();
    std::set<std::string> names;
    if (!j["weightsManifest"].is_array()) throw Error(source + ": weightsManifest is not a list");
    for (const Json& group : j["weightsManifest"]) {
        if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() ||
            !group.contains("weights") || !group["weights"].is_array())
            throw Error(source + ": a weightsManifest group needs `paths` and `weights` lists");
        std::string bytes;
        for (const Json& p : group["paths"]) {
            if (!p.is_string()) throw Error(source + ": a shard path is not a string");
            bytes += read_shard(dir, p.get<std::string>(), source);
        }
        size_t offset = 0;
        for (const Json& spec : group["weights"]) {
            try {
                model.weights.push_back(decode_weight(spec, bytes, offset, source));
            } catch (const Json::exception& e) {
                throw Error(source + ": a malformed weight entry (" + e.what() + ")");
            }
            if (!names.insert(model.weights.back().name).second)
                throw Error(source + ": weight " + model.weights.back().name + " appears twice");
        }
        if (offset != bytes.size())
            throw Error(source + ": the shards of a weight group hold " +
                        std::to_string(bytes.size() - offset) +
                        " bytes more than its weights need (a wrong or mixed-up shard?)");
    }
    return model;
}

}  // namespace igan
