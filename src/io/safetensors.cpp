#include "io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"

// Tensor bytes are copied verbatim between the file and memory.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors I/O needs a little-endian host");

namespace igan {

namespace {

using Json = nlohmann::json;

// The reference implementation's limit; real headers are a few kilobytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// A valid header nests three levels deep (root, entry, shape); more is an attack or garbage.
constexpr int kMaxJsonDepth = 8;
constexpr const char* kNotSafetensors = " (not a safetensors file, or it is corrupt)";
constexpr const char* kCorrupt = " (the file is corrupt)";
constexpr const char* kMetadataKey = "__metadata__";

struct DType {
    const char* name;
    at::ScalarType type;
    uint64_t size;
};

constexpr DType kDTypes[] = {
    {"F64", at::kDouble, 8},    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},
    {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8},  {"I32", at::kInt, 4},
    {"I16", at::kShort, 2},     {"I8", at::kChar, 1},   {"U8", at::kByte, 1},
    {"BOOL", at::kBool, 1},
};

const DType* find_dtype(const std::string& name) {
    for (const DType& dtype : kDTypes) {
        if (name == dtype.name) return &dtype;
    }
    return nullptr;
}

const DType* find_dtype(at::ScalarType type) {
    for (const DType& dtype : kDTypes) {
        if (type == dtype.type) return &dtype;
    }
    return nullptr;
}

// Names come from untrusted files: escape control characters and cap the length so an error
// stays on one readable line.
constexpr size_t kMaxShown = 80;

std::string quote(const std::string& name) {
    const bool cut = name.size() > kMaxShown;
    const Json shown = cut ? name.substr(0, kMaxShown) : name;
    return shown.dump(-1, ' ', false, Json::error_handler_t::replace) + (cut ? "..." : "");
}

std::string brief(const Json& value) {
    const std::string text = value.dump(-1, ' ', false, Json::error_handler_t::replace);
    return text.size() > kMaxShown ? text.substr(0, kMaxShown) + "..." : text;
}

struct Entry {
    std::string name;
    const DType* dtype;
    std::vector<int64_t> shape;
    uint64_t begin;
    uint64_t end;
};

class Parser {
public:
    Parser(const std::string& bytes, const std::string& name) : bytes_(bytes), name_(name) {}

    TensorFile parse() {
        if (bytes_.size() < 8) {
            fail("file has only " + std::to_string(bytes_.size()) +
                 " bytes, too few for a safetensors header" + kNotSafetensors);
        }
        uint64_t header_size = 0;
        for (int i = 7; i >= 0; --i) {
            header_size = header_size << 8 | static_cast<unsigned char>(bytes_[i]);
        }
        if (header_size > kMaxHeaderBytes) {
            fail("header length " + std::to_string(header_size) + " exceeds the 100 MB limit" +
                 kNotSafetensors);
        }
        if (header_size > bytes_.size() - 8) {
            fail("truncated: header declares " + std::to_string(header_size) +
                 " bytes of JSON, file has " + std::to_string(bytes_.size() - 8) +
                 " after the length field" + kNotSafetensors);
        }
        const char* header = bytes_.data() + 8;
        const Json root = parse_json(header, header + header_size);
        if (!root.is_object()) fail(std::string("header is not a JSON object") + kNotSafetensors);

        data_ = header + header_size;
        data_size_ = bytes_.size() - 8 - header_size;

        TensorFile file;
        std::vector<Entry> entries;
        uint64_t data_needed = 0;
        for (const auto& [key, value] : root.items()) {
            if (key == kMetadataKey) {
                file.metadata = parse_metadata(value);
                continue;
            }
            entries.push_back(parse_entry(key, value));
            data_needed = std::max(data_needed, entries.back().end);
        }
        if (data_needed > data_size_) {
            fail("truncated: header declares " + std::to_string(data_needed) +
                 " bytes of tensor data, file has " + std::to_string(data_size_) +
                 " (incomplete download or copy?)");
        }
        for (const Entry& entry : entries) file.tensors.emplace(entry.name, load(entry));
        return file;
    }

private:
    [[noreturn]] void fail(const std::string& problem) const {
        throw Error(name_ + ": " + problem);
    }

    [[noreturn]] void fail_tensor(const std::string& tensor, const std::string& problem) const {
        fail("tensor " + quote(tensor) + ": " + problem + kCorrupt);
    }

    Json parse_json(const char* begin, const char* end) const {
        const auto limit_depth = [this](int depth, Json::parse_event_t, Json&) {
            if (depth > kMaxJsonDepth) {
                fail(std::string("header JSON is nested too deeply") + kNotSafetensors);
            }
            return true;
        };
        try {
            return Json::parse(begin, end, limit_depth);
        } catch (const Json::exception& e) {
            fail(std::string("invalid JSON header: ") + e.what() + kNotSafetensors);
        }
    }

    std::map<std::string, std::string> parse_metadata(const Json& value) const {
        std::map<std::string, std::string> metadata;
        if (!value.is_object()) fail(std::string("\"__metadata__\" is not an object") + kCorrupt);
        for (const auto& [key, text] : value.items()) {
            if (!text.is_string()) {
                fail("\"__metadata__\" value " + quote(key) + " is not a string" + kCorrupt);
            }
            metadata.emplace(key, text.get<std::string>());
        }
        return metadata;
    }

    // Non-negative integer that fits int64; nlohmann stores positive integers as unsigned.
    static bool as_count(const Json& value, uint64_t& out) {
        if (!value.is_number_unsigned()) return false;
        out = value.get<uint64_t>();
        return out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    }

    Entry parse_entry(const std::string& key, const Json& value) const {
        if (!value.is_object()) fail_tensor(key, "entry is not a JSON object");
        Entry entry{key, nullptr, {}, 0, 0};

        const auto dtype = value.find("dtype");
        if (dtype == value.end() || !dtype->is_string()) {
            fail_tensor(key, "missing or non-string \"dtype\"");
        }
        entry.dtype = find_dtype(dtype->get<std::string>());
        if (entry.dtype == nullptr) {
            fail("tensor " + quote(key) + ": unsupported dtype " +
                 quote(dtype->get<std::string>()) +
                 " (igan reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
        }

        const auto shape = value.find("shape");
        if (shape == value.end() || !shape->is_array()) {
            fail_tensor(key, "missing or non-array \"shape\"");
        }
        uint64_t numel = 1;
        for (const Json& dim : *shape) {
            uint64_t size = 0;
            if (!as_count(dim, size)) {
                fail_tensor(key, "shape " + brief(*shape) + " has dimension " + brief(dim) +
                                     "; dimensions are integers from 0 to 2^63-1");
            }
            if (__builtin_mul_overflow(numel, size, &numel)) {
                fail_tensor(key, "shape " + brief(*shape) + " is too large");
            }
            entry.shape.push_back(static_cast<int64_t>(size));
        }
        uint64_t nbytes = 0;
        if (numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
            __builtin_mul_overflow(numel, entry.dtype->size, &nbytes)) {
            fail_tensor(key, "shape " + brief(*shape) + " is too large");
        }

        const auto offsets = value.find("data_offsets");
        if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
            !as_count((*offsets)[0], entry.begin) || !as_count((*offsets)[1], entry.end) ||
            entry.begin > entry.end) {
            fail_tensor(key, "\"data_offsets\" is missing or not [begin, end] with begin <= end");
        }
        if (entry.end - entry.begin != nbytes) {
            fail_tensor(key, "shape " + brief(*shape) + " of " + entry.dtype->name + " needs " +
                                 std::to_string(nbytes) + " bytes but data_offsets span " +
                                 std::to_string(entry.end - entry.begin));
        }
        return entry;
    }

    at::Tensor load(const Entry& entry) const {
        const char* source = data_ + entry.begin;
        const size_t nbytes = entry.end - entry.begin;
        // Any byte but 0 or 1 in a bool is undefined behaviour once torch reads it.
        if (entry.dtype->type == at::kBool) {
            for (size_t i = 0; i < nbytes; ++i) {
                if (static_cast<unsigned char>(source[i]) > 1) {
                    fail_tensor(entry.name, "BOOL data holds a byte other than 0 or 1");
                }
            }
        }
        at::Tensor tensor = at::empty(entry.shape, at::TensorOptions().dtype(entry.dtype->type));
        if (nbytes > 0) std::memcpy(tensor.data_ptr(), source, nbytes);
        return tensor;
    }

    const std::string& bytes_;
    const std::string& name_;
    const char* data_ = nullptr;
    uint64_t data_size_ = 0;
};

}  // namespace

TensorFile parse_safetensors(const std::string& bytes, const std::string& name_for_errors) {
    return Parser(bytes, name_for_errors).parse();
}

TensorFile read_safetensors(const std::string& path) {
    return parse_safetensors(read_file(path), path);
}

void write_safetensors(const std::string& path, const TensorFile& file) {
    // The header is built from sizes alone; tensors are copied to the CPU one at a time below.
    Json header = Json::object();
    if (!file.metadata.empty()) header[kMetadataKey] = file.metadata;
    uint64_t offset = 0;
    for (const auto& [name, tensor] : file.tensors) {
        const std::string what = path + ": cannot write tensor " + quote(name) + ": ";
        if (name == kMetadataKey) throw Error(what + "the name is reserved for metadata");
        if (!tensor.defined()) throw Error(what + "tensor is undefined");
        if (tensor.layout() != at::kStrided) throw Error(what + "only dense tensors are supported");
        const DType* dtype = find_dtype(tensor.scalar_type());
        if (dtype == nullptr) {
            throw Error(what + "dtype " + std::string(c10::toString(tensor.scalar_type())) +
                        " has no safetensors equivalent");
        }
        const uint64_t nbytes = static_cast<uint64_t>(tensor.numel()) * dtype->size;
        header[name] = {{"dtype", dtype->name},
                        {"shape", tensor.sizes().vec()},
                        {"data_offsets", Json::array({offset, offset + nbytes})}};
        offset += nbytes;
    }

    std::string text;
    try {
        text = header.dump();
    } catch (const Json::exception& e) {
        throw Error(path +
                    ": cannot encode the header (names and metadata must be UTF-8): " + e.what());
    }
    // Padding keeps the tensor data 8-byte aligned for readers that map the file.
    text.append((8 - text.size() % 8) % 8, ' ');
    unsigned char length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(text.size() >> (8 * i));

    AtomicFile out(path);
    out.write(length, sizeof length);
    out.write(text.data(), text.size());
    for (const auto& entry : file.tensors) {
        const at::Tensor cpu = entry.second.detach().to(at::kCPU).contiguous();
        out.write(cpu.data_ptr(), cpu.nbytes());
    }
    out.commit();
}

}  // namespace igan
