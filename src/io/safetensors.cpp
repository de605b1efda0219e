#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/hash.h"

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

// Tensor bytes come from a whole file in memory or from a file descriptor, read tensor by tensor
// into the tensors' own storage (so loading never holds the file twice).
using ReadAt = std::function<void(uint64_t offset, void* out, size_t size)>;

// The header is parsed and checked against the file size before any tensor data is read, so a
// hostile file costs at most its (bounded) header.
class Parser {
public:
    explicit Parser(const std::string& name) : name_(name) {}

    // The header length field: checked against the limit and the file size.
    uint64_t header_length(const unsigned char* field, uint64_t file_size) const {
        if (file_size < 8) {
            fail("file has only " + std::to_string(file_size) +
                 " bytes, too few for a safetensors header" + kNotSafetensors);
        }
        uint64_t header_size = 0;
        for (int i = 7; i >= 0; --i) header_size = header_size << 8 | field[i];
        if (header_size > kMaxHeaderBytes) {
            fail("header length " + std::to_string(header_size) + " exceeds the 100 MB limit" +
                 kNotSafetensors);
        }
        if (header_size > file_size - 8) {
            fail("truncated: header declares " + std::to_string(header_size) +
                 " bytes of JSON, file has " + std::to_string(file_size - 8) +
                 " after the length field" + kNotSafetensors);
        }
        return header_size;
    }

    // Parses the JSON header and checks the layout against the `data_size` bytes that follow it.
    void parse_header(const char* header, uint64_t header_size, uint64_t data_size) {
        const Json root = parse_json(header, header + header_size);
        if (!root.is_object()) fail(std::string("header is not a JSON object") + kNotSafetensors);
        for (const auto& [key, value] : root.items()) {
            if (key == kMetadataKey) {
                metadata_ = parse_metadata(value);
                continue;
            }
            entries_.push_back(parse_entry(key, value));
        }
        // In file order: load() then reads the data front to back, once.
        std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
            return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
        });
        check_layout(data_size);
    }

    TensorFile load(const ReadAt& read_data) const {
        TensorFile file;
        file.metadata = metadata_;
        for (const Entry& entry : entries_) file.tensors.emplace(entry.name, load(entry, read_data));
        return file;
    }

private:
    [[noreturn]] void fail(const std::string& problem) const {
        throw Error(name_ + ": " + problem);
    }

    [[noreturn]] void fail_tensor(const std::string& tensor, const std::string& problem) const {
        fail("tensor " + quote(tensor) + ": " + problem + kCorrupt);
    }

    // The format requires the tensors to tile the data section exactly: no overlaps (two
    // tensors aliasing the same bytes), no holes, nothing after the last one.
    void check_layout(uint64_t data_size) const {
        uint64_t data_needed = 0;
        for (const Entry& entry : entries_) data_needed = std::max(data_needed, entry.end);
        if (data_needed > data_size) {
            fail("truncated: header declares " + std::to_string(data_needed) +
                 " bytes of tensor data, file has " + std::to_string(data_size) +
                 " (incomplete download or copy?)");
        }
        uint64_t covered = 0;
        const Entry* previous = nullptr;
        for (const Entry& e : entries_) {
            const Entry* entry = &e;
            if (entry->begin < covered) {
                fail_tensor(entry->name, "data_offsets [" + std::to_string(entry->begin) + ", " +
                                             std::to_string(entry->end) + "] overlap tensor " +
                                             quote(previous->name) +
                                             "; the format forbids shared bytes");
            }
            if (entry->begin > covered) {
                fail_tensor(entry->name, "data_offsets begin at " + std::to_string(entry->begin) +
                                             " but the previous tensor ends at " +
                                             std::to_string(covered) +
                                             "; the format forbids holes in the data");
            }
            covered = entry->end;
            previous = entry;
        }
        if (covered < data_size) {
            fail("the file has " + std::to_string(data_size - covered) +
                 " bytes after the last tensor's data; the format forbids them" + kCorrupt);
        }
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

    at::Tensor load(const Entry& entry, const ReadAt& read_data) const {
        at::Tensor tensor = at::empty(entry.shape, at::TensorOptions().dtype(entry.dtype->type));
        const size_t nbytes = entry.end - entry.begin;
        if (nbytes > 0) read_data(entry.begin, tensor.data_ptr(), nbytes);
        // Any byte but 0 or 1 in a bool is undefined behaviour once torch reads it.
        if (entry.dtype->type == at::kBool) {
            const auto* bytes = static_cast<const unsigned char*>(tensor.data_ptr());
            for (size_t i = 0; i < nbytes; ++i) {
                if (bytes[i] > 1) fail_tensor(entry.name, "BOOL data holds a byte other than 0 or 1");
            }
        }
        return tensor;
    }

    const std::string& name_;
    std::map<std::string, std::string> metadata_;
    std::vector<Entry> entries_;
};

}  // namespace

TensorFile parse_safetensors(const std::string& bytes, const std::string& name_for_errors) {
    Parser parser(name_for_errors);
    const uint64_t header_size = parser.header_length(
        reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
    const char* data = bytes.data() + 8 + header_size;
    parser.parse_header(bytes.data() + 8, header_size, bytes.size() - 8 - header_size);
    return parser.load(
        [data](uint64_t offset, void* out, size_t size) { std::memcpy(out, data + offset, size); });
}

TensorFile read_safetensors(const std::string& path, std::string* sha256) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
    struct FdCloser {
        int fd;
        ~FdCloser() { ::close(fd); }
    } closer{fd};
    // Exactly `size` bytes at `offset`, or an error naming the file.
    const auto read_at = [&](uint64_t offset, void* out, size_t size) {
        auto* dst = static_cast<char*>(out);
        while (size > 0) {
            const ssize_t got = ::pread(fd, dst, std::min<size_t>(size, size_t{1} << 30),
                                        static_cast<off_t>(offset));
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
            if (got == 0) throw Error(path + ": truncated while reading (the file shrank?)");
            dst += got;
            offset += static_cast<uint64_t>(got);
            size -= static_cast<size_t>(got);
        }
    };
    struct stat info {};
    if (::fstat(fd, &info) != 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
    // A device such as /dev/zero would never end; a FIFO cannot be sized.
    if (!S_ISREG(info.st_mode)) {
        throw Error(path + ": not a regular file (a device, FIFO or directory); give a "
                           ".safetensors file");
    }
    const uint64_t file_size = static_cast<uint64_t>(info.st_size);
    Parser parser(path);
    unsigned char field[8] = {};
    read_at(0, field, std::min<uint64_t>(8, file_size));
    const uint64_t header_size = parser.header_length(field, file_size);
    std::string header(header_size, '\0');
    read_at(8, header.data(), header_size);
    parser.parse_header(header.data(), header_size, file_size - 8 - header_size);
    const uint64_t data_start = 8 + header_size;
    // The layout check leaves no byte outside the length field, the header and the tensors,
    // which load() reads in file order: hashing what is read hashes the whole file.
    Sha256 digest;
    if (sha256) {
        digest.update(field, sizeof field);
        digest.update(header.data(), header.size());
    }
    TensorFile file = parser.load([&](uint64_t offset, void* out, size_t size) {
        read_at(data_start + offset, out, size);
        if (sha256) digest.update(out, size);
    });
    if (sha256) *sha256 = digest.hex();
    return file;
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

void check_igan_identity(const TensorFile& file, const std::string& path, const std::string& arch,
                         bool arch_required) {
    const auto version = file.metadata.find("igan.format_version");
    if (version != file.metadata.end() && version->second != kIganFormatVersion)
        throw Error(path + ": igan.format_version is '" + version->second.substr(0, 20) +
                    "' but this igan reads version " + kIganFormatVersion +
                    " (written by another igan release: use a matching igan, or re-export it)");
    const auto found = file.metadata.find("igan.arch");
    if (found == file.metadata.end() ? arch_required : found->second != arch)
        throw Error(path + ": holds '" +
                    (found == file.metadata.end() ? std::string("no igan.arch")
                                                  : found->second.substr(0, 60)) +
                    "', not " + arch + " weights");
}

}  // namespace igan
