#pragma once
// PMTiles v3 archives (spec: github.com/protomaps/PMTiles, spec/v3/spec.md):
// one file holding a 127-byte header, a gzip'd root directory within the first
// 16 KiB, gzip'd JSON metadata, gzip'd leaf directories and the tile data,
// clustered (tile data in tile-ID order) and deduplicated (identical tiles
// stored once, runs of them as one entry).
#include <cstdint>
#include <string>
#include <vector>

#include "export/tile_spool.h"

namespace igan {

// The tile ID of (z, x, y): the tiles of all coarser zooms, then the position
// of (x, y) along the Hilbert curve of zoom z.
uint64_t pmtiles_tile_id(int z, uint64_t x, uint64_t y);

struct PmtilesEntry {
    uint64_t tile_id = 0;
    uint64_t offset = 0;  // in the tile data (or, run_length 0, in the leaf directories)
    uint64_t length = 0;
    uint64_t run_length = 1;  // consecutive tile IDs with these bytes; 0: a leaf directory
};

// A directory as the spec lays it out, before compression: the count, then
// columns of varints (tile-ID deltas, run lengths, lengths, offsets with 0
// meaning "right after the previous entry's bytes").
std::string pmtiles_directory(const std::vector<PmtilesEntry>& entries);
std::string gzip(const std::string& data);

enum class PmtilesTileType : uint8_t { kPng = 2, kWebp = 4 };

// Header fields the tiles do not determine.
struct PmtilesInfo {
    PmtilesTileType tile_type = PmtilesTileType::kPng;
    int min_zoom = 0, max_zoom = 0, center_zoom = 0;
    double min_lon = -180, min_lat = -85, max_lon = 180, max_lat = 85;  // degrees
    double center_lon = 0, center_lat = 0;
};

struct PmtilesStats {
    int64_t addressed = 0, entries = 0, contents = 0, leaves = 0;
    uint64_t bytes = 0;
};

class PmtilesWriter {
public:
    // Tiles go to a spool beside `path` until finish() writes the archive.
    explicit PmtilesWriter(std::string path);

    // Each (z, x, y) once, in any order.
    void add(int z, uint64_t x, uint64_t y, const std::string& bytes);
    // Writes the archive through a temporary file renamed to the path.
    PmtilesStats finish(const PmtilesInfo& info, const std::string& metadata_json);

    // The root directory must fit in the first 16 KiB with the header (readers
    // fetch that much first); beyond that, entries go to leaf directories of at
    // least this many entries. Tests lower both.
    size_t root_limit = 16384 - 127;
    size_t leaf_entries = 4096;

private:
    struct Tile {
        uint64_t id;
        int64_t blob;
    };
    std::string path_;
    TileSpool spool_;
    std::vector<Tile> tiles_;
};

}  // namespace igan
