#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <sstream>

#include "core/error.h"

namespace igan {

namespace {

std::string random_suffix() {
    std::random_device device;
    std::uniform_int_distribution<unsigned long long> dist;
    std::ostringstream out;
    out << ".tmp-" << getpid() << '-' << std::hex << dist(device);
    return out.str();
}

struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
};

std::string parent_directory(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

std::string read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
    const FdCloser closer{fd};
    struct stat info {};
    std::string bytes;
    if (::fstat(fd, &info) == 0 && S_ISREG(info.st_mode)) {
        bytes.reserve(static_cast<size_t>(info.st_size));
    }
    char chunk[1 << 16];
    for (;;) {
        const ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got == 0) break;
        if (got < 0) {
            if (errno == EINTR) continue;
            throw Error("cannot read " + path + ": " + std::strerror(errno));
        }
        bytes.append(chunk, static_cast<size_t>(got));
    }
    return bytes;
}

AtomicFile::AtomicFile(const std::string& path) : path_(path), temp_path_(path + random_suffix()) {
    // O_EXCL: never reuse a file someone else created under our temporary name.
    const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        throw Error("cannot create " + path_ + ": " + std::strerror(errno));
    }
    file_ = ::fdopen(fd, "wb");
    if (file_ == nullptr) {
        const int err = errno;
        ::close(fd);
        ::unlink(temp_path_.c_str());
        throw Error("cannot create " + path_ + ": " + std::strerror(err));
    }
}

AtomicFile::~AtomicFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_) ::unlink(temp_path_.c_str());
}

void AtomicFile::fail(const std::string& what, int err) {
    throw Error(what + " " + path_ + ": " + std::strerror(err));
}

void AtomicFile::write(const void* data, std::size_t size) {
    if (file_ == nullptr) throw Error("cannot write " + path_ + ": file is already committed");
    if (size > 0 && std::fwrite(data, 1, size, file_) != size) fail("cannot write", errno);
}

void AtomicFile::commit() {
    if (file_ == nullptr) throw Error("cannot commit " + path_ + ": file is already committed");
    if (std::fflush(file_) != 0) fail("cannot write", errno);
    if (::fsync(::fileno(file_)) != 0) fail("cannot sync", errno);
    std::FILE* file = file_;
    file_ = nullptr;
    if (std::fclose(file) != 0) fail("cannot write", errno);
    if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("cannot rename to", errno);
    committed_ = true;
}

void check_writable_path(const std::string& path) {
    if (path.empty()) throw Error("output path is empty");
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
        throw Error("cannot write " + path + ": it is a directory");
    }
    const std::string dir = parent_directory(path);
    if (::stat(dir.c_str(), &info) != 0) {
        throw Error("cannot write " + path + ": directory " + dir + ": " + std::strerror(errno));
    }
    if (!S_ISDIR(info.st_mode)) {
        throw Error("cannot write " + path + ": " + dir + " is not a directory");
    }
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        throw Error("cannot write " + path + ": directory " + dir +
                    " is not writable: " + std::strerror(errno));
    }
}

}  // namespace igan
