#pragma once
// SHA-256 digests as lowercase hex, used to identify weight files and fixtures.
#include <cstddef>
#include <memory>
#include <string>

namespace igan {

// A digest fed piece by piece, for bytes read once for another purpose (a weight file's tensors).
class Sha256 {
public:
    Sha256();
    ~Sha256();
    void update(const void* data, std::size_t size);
    std::string hex();  // the digest of everything fed; call once

private:
    struct Context;
    std::unique_ptr<Context> context_;
};

std::string sha256_bytes(const void* data, std::size_t size);
// Streams the file in 1 MB chunks; throws igan::Error naming the file on I/O errors.
std::string sha256_file(const std::string& path);

}  // namespace igan
