#include "io/zip_reader.h"

#include <array>
#include <cstring>

#include "core/error.h"

namespace igan {

namespace {

// Slicing-by-8 tables: tables[0] is the classic byte table.
struct Crc32Tables {
    std::array<std::array<uint32_t, 256>, 8> t{};
    Crc32Tables() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; ++i)
            for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    }
};

const Crc32Tables& crc_tables() {
    static const Crc32Tables tables;
    return tables;
}

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kZip64LocatorSize = 20,
                 kZip64EndSize = 56;
constexpr uint64_t kMaxEntries = 1 << 20;

uint64_t le(const char* p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(p[i]);
    return v;
}

// Entry names come from the file: show them on one line, escaped and capped.
std::string shown(const std::string& name) {
    std::string out;
    for (unsigned char c : name.substr(0, 80)) {
        if (c >= 0x20 && c < 0x7f) {
            out += char(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    return "'" + out + (name.size() > 80 ? "...'" : "'");
}

}  // namespace

uint32_t crc32(const void* data, size_t size, uint32_t crc) {
    const auto& t = crc_tables().t;
    const auto* p = static_cast<const unsigned char*>(data);
    crc = ~crc;
    while (size >= 8) {
        const uint32_t lo = crc ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
                                   uint32_t(p[3]) << 24);
        crc = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
              t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
        p += 8;
        size -= 8;
    }
    while (size--) crc = t[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

bool looks_like_zip(std::string_view bytes) {
    return bytes.size() >= 4 && le(bytes.data(), 4) == kLocalSig;
}

void ZipArchive::fail(const std::string& what) const {
    throw Error(name_ + ": " + what + " (not a ZIP archive, or it is truncated or corrupt)");
}

ZipArchive::ZipArchive(std::string_view bytes, std::string name_for_errors)
    : bytes_(bytes), name_(std::move(name_for_errors)) {
    const uint64_t size = bytes_.size();
    const char* base = bytes_.data();
    if (size < kEndSize) fail("only " + std::to_string(size) + " bytes");

    // End of central directory: the last signature whose comment reaches the end of the file.
    uint64_t end = UINT64_MAX;
    const uint64_t lowest = size >= kEndSize + 0xFFFF ? size - kEndSize - 0xFFFF : 0;
    for (uint64_t pos = size - kEndSize + 1; pos-- > lowest;) {
        if (le(base + pos, 4) == kEndSig && pos + kEndSize + le(base + pos + 20, 2) == size) {
            end = pos;
            break;
        }
    }
    if (end == UINT64_MAX) fail("no end-of-central-directory record");
    const char* e = base + end;
    uint64_t disk = le(e + 4, 2), cd_disk = le(e + 6, 2), count_disk = le(e + 8, 2);
    uint64_t count = le(e + 10, 2), cd_size = le(e + 12, 4), cd_offset = le(e + 16, 4);
    uint64_t cd_limit = end;  // the central directory ends before the records that follow it

    if (end >= kZip64LocatorSize && le(e - kZip64LocatorSize, 4) == kZip64LocatorSig) {
        const char* loc = e - kZip64LocatorSize;
        const uint64_t rec = le(loc + 8, 8);
        if (le(loc + 4, 4) != 0 || le(loc + 16, 4) > 1) fail("multi-disk archives are not supported");
        if (rec > end - kZip64LocatorSize || end - kZip64LocatorSize - rec < kZip64EndSize ||
            le(base + rec, 4) != kZip64EndSig)
            fail("bad ZIP64 end-of-central-directory locator");
        const char* r = base + rec;
        disk = le(r + 16, 4);
        cd_disk = le(r + 20, 4);
        count_disk = le(r + 24, 8);
        count = le(r + 32, 8);
        cd_size = le(r + 40, 8);
        cd_offset = le(r + 48, 8);
        cd_limit = rec;
    } else if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
        fail("ZIP64 sizes without a ZIP64 locator");
    }
    if (disk != 0 || cd_disk != 0 || count_disk != count) fail("multi-disk archives are not supported");
    if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset)
        fail("central directory lies outside the archive");
    if (count > cd_size / kCentralSize || count > kMaxEntries)
        fail("central directory declares " + std::to_string(count) + " entries in " +
             std::to_string(cd_size) + " bytes");

    uint64_t pos = cd_offset;
    const uint64_t cd_end = cd_offset + cd_size;
    entries_.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
        if (cd_end - pos < kCentralSize || le(base + pos, 4) != kCentralSig)
            fail("central directory entry " + std::to_string(i) + " is damaged");
        const char* c = base + pos;
        const uint64_t flags = le(c + 8, 2), method = le(c + 10, 2);
        uint64_t csize = le(c + 20, 4), usize = le(c + 24, 4), offset = le(c + 42, 4);
        const uint64_t name_len = le(c + 28, 2), extra_len = le(c + 30, 2),
                       comment_len = le(c + 32, 2), entry_disk = le(c + 34, 2);
        const uint64_t total = kCentralSize + name_len + extra_len + comment_len;
        if (cd_end - pos < total) fail("central directory entry " + std::to_string(i) + " is truncated");
        ZipEntry entry;
        entry.name.assign(c + kCentralSize, name_len);
        entry.crc32 = uint32_t(le(c + 16, 4));

        // ZIP64 extended information: the 64-bit values of the fields that hold all ones.
        const char* x = c + kCentralSize + name_len;
        const char* x_end = x + extra_len;
        while (x_end - x >= 4) {
            const uint64_t id = le(x, 2), len = le(x + 2, 2);
            if (uint64_t(x_end - x - 4) < len) fail("bad extra field in " + shown(entry.name));
            if (id == 0x0001) {
                const char* f = x + 4;
                const char* f_end = f + len;
                for (uint64_t* field : {&usize, &csize, &offset}) {
                    if (*field != 0xFFFFFFFF) continue;
                    if (f_end - f < 8) fail("bad ZIP64 field in " + shown(entry.name));
                    *field = le(f, 8);
                    f += 8;
                }
            }
            x += 4 + len;
        }
        if (entry_disk != 0 && entry_disk != 0xFFFF) fail("multi-disk archives are not supported");
        if (flags & 1) fail(shown(entry.name) + " is encrypted");
        if (method != 0)
            fail(shown(entry.name) + " is compressed (method " + std::to_string(method) +
                 "); torch.save stores entries uncompressed, so re-save the checkpoint with "
                 "torch.save instead of repacking it");
        if (csize != usize) fail(shown(entry.name) + " has different stored and original sizes");
        entry.size = usize;

        // The local header must agree and the data must lie before the central directory.
        if (offset > cd_offset || cd_offset - offset < kLocalSize || le(base + offset, 4) != kLocalSig)
            fail("local header of " + shown(entry.name) + " is missing or outside the archive");
        const char* l = base + offset;
        const uint64_t l_name = le(l + 26, 2), l_extra = le(l + 28, 2);
        const uint64_t data = offset + kLocalSize + l_name + l_extra;
        if (data > cd_offset || entry.size > cd_offset - data)
            fail(shown(entry.name) + " extends past the end of the archive data (declares " +
                 std::to_string(entry.size) + " bytes)");
        if (l_name != name_len || std::memcmp(l + kLocalSize, entry.name.data(), name_len) != 0)
            fail("local header of " + shown(entry.name) + " names a different file");
        if (le(l + 8, 2) != 0) fail("local header of " + shown(entry.name) + " declares compression");
        entry.data_offset = data;

        if (!index_.emplace(entry.name, entries_.size()).second)
            fail("duplicate entry " + shown(entry.name));
        entries_.push_back(std::move(entry));
        pos += total;
    }
    verified_.assign(entries_.size(), false);
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &entries_[it->second];
}

std::string_view ZipArchive::read(const ZipEntry& entry) const {
    const size_t i = size_t(&entry - entries_.data());
    if (i >= entries_.size()) throw Error(name_ + ": internal error: entry of another archive");
    std::string_view data = bytes_.substr(entry.data_offset, entry.size);
    if (!verified_[i]) {
        const uint32_t actual = crc32(data.data(), data.size());
        if (actual != entry.crc32) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "CRC-32 %08x, expected %08x", actual, entry.crc32);
            throw Error(name_ + ": " + shown(entry.name) + " is corrupt (" + buf + ")");
        }
        verified_[i] = true;
    }
    return data;
}

}  // namespace igan
