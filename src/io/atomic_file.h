#pragma once
// Whole-file I/O, and the one owner of atomic writes: files and folders are written under a
// temporary name beside their path, synced, then renamed into place, so readers see either the
// old one or the complete new one, even when the writer throws, is killed or the power fails.
#include <cstddef>
#include <cstdio>
#include <string>

namespace igan {

// The whole file as bytes; throws igan::Error "cannot open <path>: <OS error>" and the like.
// Only regular files of at most `max_bytes` are read: a device such as /dev/zero never ends.
std::string read_file(const std::string& path, std::size_t max_bytes = std::size_t{1} << 32);

class AtomicFile {
public:
    // Creates `path + ".tmp-<pid>-<random>"` next to `path` (same directory, so rename is atomic).
    // Refuses a `path` that exists and is not a regular file (a device, FIFO or socket): the
    // rename would replace it.
    explicit AtomicFile(const std::string& path);
    // Without commit() the temporary file is removed and `path` is left untouched.
    ~AtomicFile();

    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    // Binary stream of the temporary file; valid until commit().
    std::FILE* file() const { return file_; }
    const std::string& temp_path() const { return temp_path_; }

    // Throws igan::Error naming `path` and the OS error on a short write.
    void write(const void* data, std::size_t size);
    // Flushes, fsyncs, closes and renames over `path`, then fsyncs the directory.
    void commit();

private:
    [[noreturn]] void fail(const std::string& what, int err);

    std::string path_;
    std::string temp_path_;
    std::FILE* file_ = nullptr;
    bool committed_ = false;
    int pending_slot_ = -1;  // in the registry remove_pending_temp_files() sweeps
};

// A folder (a training checkpoint, a DeepZoom pyramid's tiles) filled under `path + ".tmp-<pid>-<random>"`, then renamed to
// `path`, which must not exist then.
class AtomicDir {
public:
    explicit AtomicDir(const std::string& path);
    // Without commit() the temporary folder and everything in it are removed.
    ~AtomicDir();

    AtomicDir(const AtomicDir&) = delete;
    AtomicDir& operator=(const AtomicDir&) = delete;

    // Where to write the folder's files until commit().
    const std::string& temp_path() const { return temp_path_; }
    // Fsyncs every file and folder in it and the folder itself, renames it to `path` and fsyncs
    // the parent directory; throws igan::Error naming `path` and the OS error.
    void commit();

private:
    std::string path_;
    std::string temp_path_;
    bool committed_ = false;
};

// Unlinks the temporary file of every AtomicFile alive in this process. Async-signal-safe: a
// signal handler calls it before the process dies, so no `<path>.tmp-*` outlives the process.
void remove_pending_temp_files() noexcept;

// Throws igan::Error unless `path` could be created: its parent directory must exist and be
// writable, and `path` must not exist as anything but a regular file (not a directory, device,
// FIFO or socket). Lets tools fail before hours of work.
void check_writable_path(const std::string& path);

}  // namespace igan
