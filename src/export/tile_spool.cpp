#include "export/tile_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "core/error.h"

namespace igan {

TileSpool::TileSpool(const std::string& near) : file_(near + ".tiles") {
    read_fd_ = ::open(file_.temp_path().c_str(), O_RDONLY | O_CLOEXEC);
    if (read_fd_ < 0) throw Error("cannot open " + file_.temp_path() + ": " + std::strerror(errno));
}

TileSpool::~TileSpool() {
    if (read_fd_ >= 0) ::close(read_fd_);
}

int64_t TileSpool::add(const std::string& bytes, bool dedup) {
    const uint64_t hash = std::hash<std::string_view>()(bytes);
    if (dedup) {
        const auto [from, to] = by_hash_.equal_range(hash);
        for (auto it = from; it != to; ++it)
            if (blobs_[size_t(it->second)].length == bytes.size() && read(it->second) == bytes)
                return it->second;
    }
    file_.write(bytes.data(), bytes.size());
    dirty_ = true;
    blobs_.push_back({end_, bytes.size()});
    end_ += bytes.size();
    const int64_t index = int64_t(blobs_.size()) - 1;
    if (dedup) by_hash_.emplace(hash, index);
    return index;
}

std::string TileSpool::read(int64_t blob) {
    if (dirty_) {
        if (std::fflush(file_.file()) != 0)
            throw Error("cannot write " + file_.temp_path() + ": " + std::strerror(errno));
        dirty_ = false;
    }
    const Blob& b = blobs_[size_t(blob)];
    std::string out(b.length, '\0');
    size_t done = 0;
    while (done < out.size()) {
        const ssize_t got =
            ::pread(read_fd_, out.data() + done, out.size() - done, off_t(b.offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            throw Error("cannot read " + file_.temp_path() + ": " +
                        (got < 0 ? std::strerror(errno) : "unexpected end of file"));
        done += size_t(got);
    }
    return out;
}

}  // namespace igan
