#include "export/pmtiles.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/atomic_file.h"

namespace igan {

namespace {

void put_varint(std::string* out, uint64_t v) {
    while (v >= 0x80) {
        *out += char(0x80 | (v & 0x7f));
        v >>= 7;
    }
    *out += char(v);
}

template <typename T>
void put_le(std::string* out, T v) {
    for (size_t i = 0; i < sizeof(T); ++i) *out += char((uint64_t(v) >> (8 * i)) & 0xff);
}

int32_t e7(double degrees) { return int32_t(std::lround(degrees * 1e7)); }

struct Directories {
    std::string root, leaves;
    int64_t leaf_count = 0;
};

// Leaves of `per_leaf` entries each, and a root of pointers to them.
Directories split_into_leaves(const std::vector<PmtilesEntry>& entries, size_t per_leaf) {
    Directories d;
    std::vector<PmtilesEntry> pointers;
    for (size_t at = 0; at < entries.size(); at += per_leaf) {
        const std::vector<PmtilesEntry> leaf(
            entries.begin() + ptrdiff_t(at),
            entries.begin() + ptrdiff_t(std::min(entries.size(), at + per_leaf)));
        const std::string bytes = gzip(pmtiles_directory(leaf));
        pointers.push_back({leaf.front().tile_id, d.leaves.size(), bytes.size(), 0});
        d.leaves += bytes;
    }
    d.root = gzip(pmtiles_directory(pointers));
    d.leaf_count = int64_t(pointers.size());
    return d;
}

// The whole directory in the root when it fits; else leaves, grown until their
// root fits.
Directories build_directories(const std::vector<PmtilesEntry>& entries, size_t root_limit,
                              size_t leaf_entries) {
    Directories d;
    d.root = gzip(pmtiles_directory(entries));
    if (d.root.size() <= root_limit) return d;
    size_t per_leaf = std::max(leaf_entries, entries.size() / 3500);
    while (true) {
        d = split_into_leaves(entries, per_leaf);
        if (d.root.size() <= root_limit) return d;
        per_leaf += per_leaf / 5 + 1;
    }
}

}  // namespace

uint64_t pmtiles_tile_id(int z, uint64_t x, uint64_t y) {
    if (z < 0 || z > 31 || x >> z || y >> z)
        throw Error("pmtiles: tile " + std::to_string(z) + "/" + std::to_string(x) + "/" +
                    std::to_string(y) + " is outside its zoom level");
    uint64_t id = ((uint64_t(1) << (2 * z)) - 1) / 3;  // 4^0 + ... + 4^(z-1)
    const uint64_t n = uint64_t(1) << z;
    for (uint64_t s = n / 2; s > 0; s /= 2) {
        const uint64_t rx = (x & s) ? 1 : 0, ry = (y & s) ? 1 : 0;
        id += s * s * ((3 * rx) ^ ry);
        if (ry == 0) {  // rotate the quadrant so the curve stays continuous
            if (rx == 1) {
                x = n - 1 - x;
                y = n - 1 - y;
            }
            std::swap(x, y);
        }
    }
    return id;
}

std::string pmtiles_directory(const std::vector<PmtilesEntry>& entries) {
    std::string out;
    put_varint(&out, entries.size());
    uint64_t last_id = 0;
    for (const auto& e : entries) {
        put_varint(&out, e.tile_id - last_id);
        last_id = e.tile_id;
    }
    for (const auto& e : entries) put_varint(&out, e.run_length);
    for (const auto& e : entries) put_varint(&out, e.length);
    for (size_t i = 0; i < entries.size(); ++i) {
        const bool follows =
            i > 0 && entries[i].offset == entries[i - 1].offset + entries[i - 1].length;
        put_varint(&out, follows ? 0 : entries[i].offset + 1);
    }
    return out;
}

std::string gzip(const std::string& data) {
    z_stream zs{};
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw Error("gzip: deflateInit2 failed");
    std::string out(deflateBound(&zs, uLong(data.size())) + 32, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    zs.avail_in = uInt(data.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = uInt(out.size());
    const int rc = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) throw Error("gzip: deflate failed");
    return out;
}

PmtilesWriter::PmtilesWriter(std::string path) : path_(std::move(path)), spool_(path_) {}

void PmtilesWriter::add(int z, uint64_t x, uint64_t y, const std::string& bytes) {
    tiles_.push_back({pmtiles_tile_id(z, x, y), spool_.add(bytes, true)});
}

PmtilesStats PmtilesWriter::finish(const PmtilesInfo& info, const std::string& metadata_json) {
    std::sort(tiles_.begin(), tiles_.end(),
              [](const Tile& a, const Tile& b) { return a.id < b.id; });
    // Clustered: contents in the order of their first tile ID; repeats point
    // back.
    std::vector<int64_t> offset_of(size_t(spool_.blobs()), -1);
    std::vector<int64_t> order;
    std::vector<PmtilesEntry> entries;
    uint64_t data_bytes = 0;
    for (size_t i = 0; i < tiles_.size(); ++i) {
        const Tile& t = tiles_[i];
        if (i > 0 && t.id == tiles_[i - 1].id)
            throw Error("pmtiles: tile ID " + std::to_string(t.id) + " added twice");
        int64_t& offset = offset_of[size_t(t.blob)];
        if (offset < 0) {
            offset = int64_t(data_bytes);
            data_bytes += spool_.size(t.blob);
            order.push_back(t.blob);
        }
        PmtilesEntry* last = entries.empty() ? nullptr : &entries.back();
        if (last && last->tile_id + last->run_length == t.id && last->offset == uint64_t(offset)) {
            ++last->run_length;
        } else {
            entries.push_back({t.id, uint64_t(offset), spool_.size(t.blob), 1});
        }
    }
    const Directories dirs = build_directories(entries, root_limit, leaf_entries);
    const std::string metadata = gzip(metadata_json);  // internal compression, as directories

    const uint64_t root_at = 127, meta_at = root_at + dirs.root.size();
    const uint64_t leaves_at = meta_at + metadata.size();
    const uint64_t data_at = leaves_at + dirs.leaves.size();
    std::string h("PMTiles\x03", 8);
    for (uint64_t v : {root_at, uint64_t(dirs.root.size()), meta_at, uint64_t(metadata.size()),
                       leaves_at, uint64_t(dirs.leaves.size()), data_at, data_bytes,
                       uint64_t(tiles_.size()), uint64_t(entries.size()), uint64_t(order.size())})
        put_le(&h, v);
    h += char(1);  // clustered
    h += char(2);  // internal compression: gzip
    h += char(1);  // tile compression: none (PNG and WebP compress themselves)
    h += char(uint8_t(info.tile_type));
    h += char(info.min_zoom);
    h += char(info.max_zoom);
    put_le(&h, e7(info.min_lon));
    put_le(&h, e7(info.min_lat));
    put_le(&h, e7(info.max_lon));
    put_le(&h, e7(info.max_lat));
    h += char(info.center_zoom);
    put_le(&h, e7(info.center_lon));
    put_le(&h, e7(info.center_lat));
    if (h.size() != 127) throw Error("pmtiles: header is not 127 bytes");

    AtomicFile out(path_);
    out.write(h.data(), h.size());
    out.write(dirs.root.data(), dirs.root.size());
    out.write(metadata.data(), metadata.size());
    out.write(dirs.leaves.data(), dirs.leaves.size());
    for (int64_t blob : order) {
        const std::string bytes = spool_.read(blob);
        out.write(bytes.data(), bytes.size());
    }
    out.commit();
    PmtilesStats stats;
    stats.addressed = int64_t(tiles_.size());
    stats.entries = int64_t(entries.size());
    stats.contents = int64_t(order.size());
    stats.leaves = dirs.leaf_count;
    stats.bytes = data_at + data_bytes;
    return stats;
}

}  // namespace igan
