#pragma once
// Reads PyTorch checkpoints written by torch.save without Python: the ZIP container (PyTorch
// >= 1.6: `<name>/data.pkl` plus raw storages `<name>/data/<key>`) and the legacy stream format
// (magic number, protocol, system info, pickle, storage keys, raw storages).
//
// Safe by construction: the unpickler understands only the opcodes torch.save emits for data
// (numbers, strings, bytes, tuples, lists, dicts) and calls nothing but a fixed table of
// tensor-rebuilding functions; any other global is an error naming it. Nesting, object count,
// pickle size and tensor extents are bounded, and every storage must lie inside the file.
// Tensors are described while parsing and read (CRC-checked) only when asked for.
#include <ATen/ATen.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace igan {

struct PickleLimits {
    int max_depth = 64;                       // MARK nesting and container nesting when walked
    uint64_t max_pushes = uint64_t(1) << 21;  // values pushed on the stack (bounds all memory)
    uint64_t max_pickle_bytes = uint64_t(256) << 20;
    int max_tensor_dims = 32;
};

// A decoded Python value. Objects live in their checkpoint's arena; pointers stay valid as long
// as the TorchCheckpoint does. Containers may be shared and, in hostile files, even cyclic:
// walk them with a depth bound (see TorchCheckpoint::limits()).
struct PyObject {
    enum class Kind { kNone, kBool, kInt, kBigInt, kFloat, kString, kBytes, kTuple, kList, kDict,
                      kTensor, kStorage, kGlobal, kNumpyDType };
    Kind kind = Kind::kNone;
    bool boolean = false;
    int64_t integer = 0;
    double real = 0;
    // kString (UTF-8), kBytes, kBigInt (little-endian two's complement), kGlobal ("module.name"),
    // kNumpyDType (the type code, e.g. "f8").
    std::string text;
    std::vector<PyObject*> items;                         // kTuple, kList
    std::vector<std::pair<PyObject*, PyObject*>> entries;  // kDict, in insertion order
    int index = -1;                                        // kTensor, kStorage: table index

    bool is_string() const { return kind == Kind::kString; }
    // A dict's value under string key `key` (the last one, as Python keeps), or nullptr.
    const PyObject* get(const std::string& key) const;
};

const char* kind_name(PyObject::Kind kind);

struct TensorInfo {
    at::ScalarType dtype = at::kFloat;
    std::vector<int64_t> sizes, strides;
    int64_t storage_offset = 0;  // in elements
    int storage = -1;
    bool requires_grad = false;
};

// A parsed checkpoint. Reading tensors records which entries passed their CRC check, so one
// checkpoint must not be read from several threads at once.
class TorchCheckpoint {
public:
    TorchCheckpoint();
    ~TorchCheckpoint();
    TorchCheckpoint(TorchCheckpoint&&) noexcept;
    TorchCheckpoint& operator=(TorchCheckpoint&&) noexcept;

    const PyObject& root() const;
    const std::string& name() const;
    const PickleLimits& limits() const;
    bool legacy_format() const;

    const TensorInfo& tensor_info(const PyObject& tensor) const;
    // A contiguous CPU tensor with the stored dtype and shape. Reads and CRC-checks its storage.
    at::Tensor tensor(const PyObject& tensor) const;

    struct Impl;
    explicit TorchCheckpoint(std::unique_ptr<Impl> impl);

private:
    std::unique_ptr<Impl> impl_;
};

// Maps the file (read-only) and parses it. Throws igan::Error "<path>: <problem>".
TorchCheckpoint read_torch_checkpoint(const std::string& path, const PickleLimits& limits = {});
// Parses bytes held in memory (the checkpoint keeps its own copy).
TorchCheckpoint parse_torch_checkpoint(std::string bytes, const std::string& name_for_errors,
                                       const PickleLimits& limits = {});

// One line per value, indented, for error messages and debugging; depth- and line-limited so
// that shared or cyclic containers print finitely.
std::string describe_pickle(const TorchCheckpoint& checkpoint, const PyObject& value,
                            int max_depth = 3, int max_lines = 40);

}  // namespace igan
