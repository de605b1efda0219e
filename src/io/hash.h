#pragma once
// SHA-256 digests as lowercase hex, used to identify weight files and fixtures.
#include <cstddef>
#include <string>

namespace igan {

std::string sha256_bytes(const void* data, std::size_t size);
// Streams the file in 1 MB chunks; throws igan::Error naming the file on I/O errors.
std::string sha256_file(const std::string& path);

}  // namespace igan
