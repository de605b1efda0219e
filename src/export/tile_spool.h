#pragma once
// Encoded tiles parked in a temporary file in the order they are made, so that
// an archive can be assembled in the order its format wants (PMTiles: tile ID;
// COG: coarsest level first) without holding the tiles in memory. Memory: 16
// bytes per stored blob, plus a hash-table node per blob when deduplicating.
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/atomic_file.h"

namespace igan {

class TileSpool {
public:
    // The temporary file lives beside `near` (same file system as the output) and
    // is removed when the spool is destroyed, or by a signal handler if the
    // process dies.
    explicit TileSpool(const std::string& near);
    ~TileSpool();
    TileSpool(const TileSpool&) = delete;
    TileSpool& operator=(const TileSpool&) = delete;

    // Stores `bytes` and returns its blob index. With `dedup`, bytes equal to an
    // earlier blob's (same hash, then compared byte for byte) return that blob
    // instead of a new one.
    int64_t add(const std::string& bytes, bool dedup);
    int64_t blobs() const { return int64_t(blobs_.size()); }
    uint64_t size(int64_t blob) const { return blobs_[size_t(blob)].length; }
    // The blob's bytes (written or not yet flushed).
    std::string read(int64_t blob);

private:
    struct Blob {
        uint64_t offset, length;
    };
    AtomicFile file_;
    int read_fd_ = -1;
    uint64_t end_ = 0;
    bool dirty_ = false;  // written since the last flush
    std::vector<Blob> blobs_;
    std::unordered_multimap<uint64_t, int64_t> by_hash_;
};

}  // namespace igan
