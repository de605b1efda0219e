#include "io/hash.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/error.h"

namespace igan {

namespace {

struct DigestDeleter {
    void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using DigestPtr = std::unique_ptr<EVP_MD_CTX, DigestDeleter>;

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};

DigestPtr new_sha256() {
    DigestPtr context(EVP_MD_CTX_new());
    if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1) {
        throw Error("sha256: cannot initialise OpenSSL digest");
    }
    return context;
}

void feed(EVP_MD_CTX* context, const void* data, std::size_t size) {
    if (EVP_DigestUpdate(context, data, size) != 1) throw Error("sha256: OpenSSL digest failed");
}

std::string finish_hex(EVP_MD_CTX* context) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(context, digest, &length) != 1) {
        throw Error("sha256: OpenSSL digest failed");
    }
    static const char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        hex += kHex[digest[i] >> 4];
        hex += kHex[digest[i] & 15];
    }
    return hex;
}

}  // namespace

struct Sha256::Context {
    DigestPtr digest = new_sha256();
};

Sha256::Sha256() : context_(std::make_unique<Context>()) {}
Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) {
    feed(context_->digest.get(), data, size);
}

std::string Sha256::hex() { return finish_hex(context_->digest.get()); }

std::string sha256_bytes(const void* data, std::size_t size) {
    Sha256 digest;
    digest.update(data, size);
    return digest.hex();
}

std::string sha256_file(const std::string& path) {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) throw Error("cannot open " + path + ": " + std::strerror(errno));
    Sha256 digest;
    std::vector<unsigned char> chunk(1 << 20);
    for (;;) {
        const std::size_t got = std::fread(chunk.data(), 1, chunk.size(), file.get());
        digest.update(chunk.data(), got);
        if (got < chunk.size()) break;
    }
    if (std::ferror(file.get())) throw Error("cannot read " + path + ": " + std::strerror(errno));
    return digest.hex();
}

}  // namespace igan
