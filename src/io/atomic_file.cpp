#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
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

const char* file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

// fsync of a file or directory by path; returns errno, 0 on success.
int sync_path(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    const FdCloser closer{fd};
    return ::fsync(fd) == 0 ? 0 : errno;
}

// After a rename: some file systems cannot fsync a directory (EINVAL); only a failed write-back
// (EIO) means the new entry may be lost.
int sync_parent(const std::string& path) {
    const int err = sync_path(parent_directory(path));
    return err == EIO ? err : 0;
}

// Outputs are replaced by renaming a new file onto them, which would destroy a device node or
// FIFO (as root, /dev/null itself): only regular files or new paths are accepted.
void refuse_non_regular_output(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
        throw Error("cannot write " + path + ": it is " + file_kind(info.st_mode) +
                    "; outputs must be regular files (give a file name)");
    }
}

// Temporary paths of live AtomicFiles as preallocated C strings, so a signal handler can unlink
// them without allocating. A slot is free (0), being filled (1) or ready (2); `generation`
// changes on every reuse, so the sweep never acts on a path rewritten under it.
constexpr int kPendingSlots = 64;
constexpr size_t kPendingPathBytes = 4096;
struct PendingSlot {
    std::atomic<int> state{0};
    std::atomic<unsigned> generation{0};
    char path[kPendingPathBytes];
};
PendingSlot g_pending[kPendingSlots];
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<unsigned>::is_always_lock_free,
              "the signal-time sweep needs lock-free atomics");

// Returns the slot, or -1 when the path is too long or every slot is taken (then only the
// destructor removes the file).
int register_pending(const std::string& path) {
    if (path.size() >= kPendingPathBytes) return -1;
    for (int i = 0; i < kPendingSlots; ++i) {
        int expected = 0;
        if (!g_pending[i].state.compare_exchange_strong(expected, 1)) continue;
        std::memcpy(g_pending[i].path, path.c_str(), path.size() + 1);
        g_pending[i].generation.fetch_add(1);
        g_pending[i].state.store(2);
        return i;
    }
    return -1;
}

void release_pending(int slot) {
    if (slot >= 0) g_pending[slot].state.store(0);
}

}  // namespace

void remove_pending_temp_files() noexcept {
    for (PendingSlot& slot : g_pending) {
        const unsigned generation = slot.generation.load();
        if (slot.state.load() != 2) continue;
        char path[kPendingPathBytes];
        std::memcpy(path, slot.path, sizeof path);
        path[sizeof path - 1] = '\0';
        if (slot.state.load() == 2 && slot.generation.load() == generation) ::unlink(path);
    }
}

std::string read_file(const std::string& path, size_t max_bytes) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
    const FdCloser closer{fd};
    struct stat info {};
    if (::fstat(fd, &info) != 0) throw Error("cannot read " + path + ": " + std::strerror(errno));
    if (!S_ISREG(info.st_mode)) {
        throw Error("cannot read " + path + ": it is " + file_kind(info.st_mode) +
                    ", not a regular file");
    }
    const auto too_large = [&] {
        return Error("cannot read " + path + ": larger than the " + std::to_string(max_bytes) +
                     "-byte limit for this kind of file");
    };
    if (static_cast<uint64_t>(info.st_size) > max_bytes) throw too_large();
    std::string bytes;
    bytes.reserve(static_cast<size_t>(info.st_size));
    char chunk[1 << 16];
    for (;;) {
        const ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got == 0) break;
        if (got < 0) {
            if (errno == EINTR) continue;
            throw Error("cannot read " + path + ": " + std::strerror(errno));
        }
        if (bytes.size() + static_cast<size_t>(got) > max_bytes) throw too_large();  // it grew
        bytes.append(chunk, static_cast<size_t>(got));
    }
    return bytes;
}

AtomicFile::AtomicFile(const std::string& path) : path_(path), temp_path_(path + random_suffix()) {
    refuse_non_regular_output(path_);
    // Registered first: a signal right after the file appears still finds it.
    pending_slot_ = register_pending(temp_path_);
    // O_EXCL: never reuse a file someone else created under our temporary name.
    const int fd = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        const int err = errno;
        release_pending(pending_slot_);
        throw Error("cannot create " + path_ + ": " + std::strerror(err));
    }
    file_ = ::fdopen(fd, "wb");
    if (file_ == nullptr) {
        const int err = errno;
        ::close(fd);
        ::unlink(temp_path_.c_str());
        release_pending(pending_slot_);
        throw Error("cannot create " + path_ + ": " + std::strerror(err));
    }
}

AtomicFile::~AtomicFile() {
    if (file_ != nullptr) std::fclose(file_);
    if (!committed_) ::unlink(temp_path_.c_str());
    release_pending(pending_slot_);
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
    refuse_non_regular_output(path_);  // it may have appeared while we wrote
    if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("cannot rename to", errno);
    committed_ = true;
    release_pending(pending_slot_);
    pending_slot_ = -1;
    // The rename itself is durable only once the directory entry is on disk.
    if (const int err = sync_parent(path_)) fail("cannot sync the directory of", err);
}

AtomicDir::AtomicDir(const std::string& path) : path_(path), temp_path_(path + random_suffix()) {
    if (::mkdir(temp_path_.c_str(), 0777) != 0)
        throw Error("cannot create " + path_ + ": " + std::strerror(errno));
}

AtomicDir::~AtomicDir() {
    std::error_code ignored;
    if (!committed_) std::filesystem::remove_all(temp_path_, ignored);
}

void AtomicDir::commit() {
    const auto fail = [&](const std::string& what, int err) {
        throw Error(what + " " + path_ + ": " + std::strerror(err));
    };
    if (committed_) throw Error("cannot commit " + path_ + ": folder is already committed");
    std::error_code ec;
    // Files and subfolders at any depth (a DeepZoom pyramid keeps its tiles in level folders).
    for (const auto& entry : std::filesystem::recursive_directory_iterator(temp_path_, ec)) {
        if (!entry.is_regular_file() && !entry.is_directory()) continue;
        if (const int err = sync_path(entry.path().string())) fail("cannot sync", err);
    }
    if (ec) fail("cannot list", ec.value());
    if (const int err = sync_path(temp_path_)) fail("cannot sync", err);
    // rename(2) would replace an empty folder at `path`: refuse any.
    if (::access(path_.c_str(), F_OK) == 0) fail("cannot rename onto the existing", EEXIST);
    if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) fail("cannot rename to", errno);
    committed_ = true;
    if (const int err = sync_parent(path_)) fail("cannot sync the directory of", err);
}

void check_writable_path(const std::string& path) {
    if (path.empty()) throw Error("output path is empty");
    refuse_non_regular_output(path);
    struct stat info {};
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
