#include "export/cog.h"

#include <zlib.h>

#include <algorithm>

#include "core/error.h"
#include "io/atomic_file.h"

namespace igan {

namespace {

enum : uint16_t { kAscii = 2, kShort = 3, kLong = 4, kLong8 = 16 };

template <typename T>
void put_le(std::string* out, T v) {
    for (size_t i = 0; i < sizeof(T); ++i) *out += char((uint64_t(v) >> (8 * i)) & 0xff);
}

struct Field {
    uint16_t tag, type;
    uint64_t count;
    std::string data;  // the values, little-endian
};

Field shorts(uint16_t tag, std::initializer_list<uint16_t> values) {
    Field f{tag, kShort, values.size(), {}};
    for (uint16_t v : values) put_le(&f.data, v);
    return f;
}

Field long1(uint16_t tag, uint32_t value) {
    Field f{tag, kLong, 1, {}};
    put_le(&f.data, value);
    return f;
}

Field ascii(uint16_t tag, const std::string& text) {
    return Field{tag, kAscii, text.size() + 1, text + '\0'};
}

Field long8s(uint16_t tag, const std::vector<uint64_t>& values) {
    Field f{tag, kLong8, values.size(), {}};
    for (uint64_t v : values) put_le(&f.data, v);
    return f;
}

// A BigTIFF directory at file offset `at`: the entry count, 20-byte entries
// (values of up to 8 bytes inline), the next directory's offset, then the
// longer values (word-aligned).
std::string serialize_ifd(std::vector<Field> fields, uint64_t at, uint64_t next) {
    std::sort(fields.begin(), fields.end(),
              [](const Field& a, const Field& b) { return a.tag < b.tag; });
    std::string ifd, extra;
    const uint64_t extra_at = at + 8 + 20 * fields.size() + 8;
    put_le(&ifd, uint64_t(fields.size()));
    for (const Field& f : fields) {
        put_le(&ifd, f.tag);
        put_le(&ifd, f.type);
        put_le(&ifd, f.count);
        if (f.data.size() <= 8) {
            ifd += f.data + std::string(8 - f.data.size(), '\0');
        } else {
            put_le(&ifd, extra_at + extra.size());
            extra += f.data;
            if (extra.size() % 2) extra += '\0';
        }
    }
    put_le(&ifd, next);
    return ifd + extra;
}

std::string deflate_tile(const std::string& raw) {
    uLongf size = compressBound(uLong(raw.size()));
    std::string out(size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(out.data()), &size,
                  reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size()),
                  Z_DEFAULT_COMPRESSION) != Z_OK)
        throw Error("cog: deflate failed");
    out.resize(size);
    return out;
}

}  // namespace

CogWriter::CogWriter(std::string path, std::vector<Level> levels, int64_t tile, bool deflate,
                     std::string description, std::string software)
    : path_(std::move(path)),
      levels_(std::move(levels)),
      tile_(tile),
      deflate_(deflate),
      description_(std::move(description)),
      software_(std::move(software)),
      spool_(path_) {
    for (size_t k = 0; k < levels_.size(); ++k)
        blobs_.emplace_back(size_t(columns(k) * rows(k)), -1);
}

void CogWriter::add(int64_t level, int64_t col, int64_t row, const uint8_t* rgb) {
    const int64_t n = 3 * tile_;
    std::string raw(reinterpret_cast<const char*>(rgb), size_t(n * tile_));
    if (deflate_) {
        // Predictor 2: each sample minus the same sample of the pixel to its left.
        for (int64_t y = 0; y < tile_; ++y) {
            char* p = raw.data() + n * y;
            for (int64_t i = n - 1; i >= 3; --i) p[i] = char(uint8_t(p[i]) - uint8_t(p[i - 3]));
        }
        raw = deflate_tile(raw);
    }
    blobs_[size_t(level)][size_t(row * columns(size_t(level)) + col)] = spool_.add(raw, false);
}

uint64_t CogWriter::finish() {
    // Tile data offsets: coarsest level first, each row by row, after every
    // directory.
    auto fields = [&](size_t k, const std::vector<uint64_t>& offsets,
                      const std::vector<uint64_t>& counts) {
        std::vector<Field> f = {
            long1(254,
                  k == 0 ? 0 : 1),  // NewSubfileType: 1 = reduced-resolution image
            long1(256, uint32_t(levels_[k].width)),
            long1(257, uint32_t(levels_[k].height)),
            shorts(258, {8, 8, 8}),
            shorts(259, {uint16_t(deflate_ ? 8 : 1)}),  // Compression: Adobe deflate or none
            shorts(262, {2}),                           // Photometric: RGB
            shorts(277, {3}),                           // SamplesPerPixel
            shorts(284, {1}),                           // PlanarConfiguration: contiguous
            long1(322, uint32_t(tile_)),
            long1(323, uint32_t(tile_)),
            long8s(324, offsets),
            long8s(325, counts),
        };
        if (deflate_) f.push_back(shorts(317, {2}));  // Predictor: horizontal differencing
        if (k == 0) {
            f.push_back(ascii(270, description_));
            f.push_back(ascii(305, software_));
        }
        return f;
    };
    std::vector<std::vector<uint64_t>> offsets(levels_.size()), counts(levels_.size());
    for (size_t k = 0; k < levels_.size(); ++k) {
        offsets[k].assign(blobs_[k].size(), 0);
        for (size_t i = 0; i < blobs_[k].size(); ++i) {
            if (blobs_[k][i] < 0)
                throw Error("cog: a tile of level " + std::to_string(k) + " is missing");
            counts[k].push_back(spool_.size(blobs_[k][i]));
        }
    }
    std::vector<uint64_t> ifd_at(levels_.size() + 1);
    ifd_at[0] = 16;
    for (size_t k = 0; k < levels_.size(); ++k)
        ifd_at[k + 1] = ifd_at[k] + serialize_ifd(fields(k, offsets[k], counts[k]), 0, 0).size();
    uint64_t at = ifd_at.back();
    for (size_t k = levels_.size(); k-- > 0;)
        for (size_t i = 0; i < blobs_[k].size(); ++i) {
            offsets[k][i] = at;
            at += counts[k][i];
        }

    std::string head("II\x2b\0\x08\0\0\0",
                     8);  // little-endian BigTIFF, 8-byte offsets
    put_le(&head, ifd_at[0]);
    for (size_t k = 0; k < levels_.size(); ++k)
        head += serialize_ifd(fields(k, offsets[k], counts[k]), ifd_at[k],
                              k + 1 < levels_.size() ? ifd_at[k + 1] : 0);
    AtomicFile out(path_);
    out.write(head.data(), head.size());
    for (size_t k = levels_.size(); k-- > 0;)
        for (int64_t blob : blobs_[k]) {
            const std::string bytes = spool_.read(blob);
            out.write(bytes.data(), bytes.size());
        }
    out.commit();
    return at;
}

}  // namespace igan
