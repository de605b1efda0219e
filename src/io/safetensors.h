#pragma once
// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON describing each tensor, then the raw little-endian,
// C-contiguous tensor data. Readers treat every file as hostile: all sizes are checked.
#include <ATen/ATen.h>

#include <map>
#include <string>

namespace igan {

struct TensorFile {
    std::map<std::string, at::Tensor> tensors;
    std::map<std::string, std::string> metadata;  // the "__metadata__" entry
};

// Reads F64, F32, F16, BF16, I64, I32, I16, I8, U8 and BOOL into CPU tensors of that dtype.
// Throws igan::Error whose message starts with `path` and names the problem. With `sha256`: also
// the file's SHA-256, of the bytes as they are read (the file is read once).
TensorFile read_safetensors(const std::string& path, std::string* sha256 = nullptr);

// Parses a whole file held in memory; `name_for_errors` prefixes every error message.
TensorFile parse_safetensors(const std::string& bytes, const std::string& name_for_errors);

// igan's weight files carry `igan.format_version` (this value) and `igan.arch` in the metadata.
constexpr const char* kIganFormatVersion = "1";

// The one identity check of a weight file on load: `igan.format_version`, when present, must be
// the one this igan reads (files without it predate the field or come from other tools), and
// `igan.arch` must be `arch` when present (always, with `arch_required`). Throws igan::Error
// naming `path`.
void check_igan_identity(const TensorFile& file, const std::string& path, const std::string& arch,
                         bool arch_required = false);

// Writes contiguous CPU copies (any device is accepted) through an AtomicFile, so `path` is
// never left half-written. The header is padded with spaces to a multiple of 8 bytes.
void write_safetensors(const std::string& path, const TensorFile& file);

}  // namespace igan
