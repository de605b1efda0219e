#pragma once
// Cloud-optimized GeoTIFF layout (the COG convention GDAL's COG driver writes
// and its validator checks) for an RGB pixel pyramid: a tiled BigTIFF whose
// directories, full resolution first and then each overview (NewSubfileType 1,
// reduced resolution), all precede the tile data, and whose tile data runs from
// the coarsest overview to the full resolution, each level row by row. A reader
// that wants a small view fetches the first bytes and one overview's tiles.
// Written by hand: libtiff appends each directory after its own data.
#include <cstdint>
#include <string>
#include <vector>

#include "export/tile_spool.h"

namespace igan {

class CogWriter {
public:
    struct Level {
        int64_t width, height;
    };
    // levels[0] is the full resolution, each next one an overview; `tile` a
    // multiple of 16.
    CogWriter(std::string path, std::vector<Level> levels, int64_t tile, bool deflate,
              std::string description, std::string software);

    // Tile (col, row) of a level: tile * tile RGB pixels, padded past the level's
    // edge.
    void add(int64_t level, int64_t col, int64_t row, const uint8_t* rgb);
    // Writes the file through a temporary file renamed to the path; returns its
    // size.
    uint64_t finish();

private:
    int64_t columns(size_t level) const { return (levels_[level].width + tile_ - 1) / tile_; }
    int64_t rows(size_t level) const { return (levels_[level].height + tile_ - 1) / tile_; }

    std::string path_;
    std::vector<Level> levels_;
    int64_t tile_;
    bool deflate_;
    std::string description_, software_;
    TileSpool spool_;
    std::vector<std::vector<int64_t>> blobs_;  // per level, row-major; -1 until added
};

}  // namespace igan
