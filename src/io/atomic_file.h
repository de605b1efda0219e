#pragma once
// Whole-file I/O. Writes go to a temporary file that is renamed into place, so readers see
// either the old file or the complete new one, even when the writer throws or is killed.
#include <cstddef>
#include <cstdio>
#include <string>

namespace igan {

// The whole file as bytes; throws igan::Error "cannot open <path>: <OS error>" and the like.
std::string read_file(const std::string& path);

class AtomicFile {
public:
    // Creates `path + ".tmp-<pid>-<random>"` next to `path` (same directory, so rename is atomic).
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
    // Flushes, fsyncs, closes and renames over `path`.
    void commit();

private:
    [[noreturn]] void fail(const std::string& what, int err);

    std::string path_;
    std::string temp_path_;
    std::FILE* file_ = nullptr;
    bool committed_ = false;
};

// Throws igan::Error unless `path` could be created: its parent directory must exist and be
// writable, and `path` must not be a directory. Lets tools fail before hours of work.
void check_writable_path(const std::string& path);

}  // namespace igan
