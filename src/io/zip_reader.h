#pragma once
// A reader for the ZIP archives that torch.save writes (PKWARE APPNOTE 6.3): stored (uncompressed)
// entries, data descriptors and ZIP64 records. The archive is held in memory; every offset and
// size is checked against it, and each entry's CRC-32 is verified when its bytes are first read.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace igan {

// Standard CRC-32 (IEEE 802.3, reflected 0xEDB88320), as ZIP, PNG and zlib use it.
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

// True when `bytes` starts with a ZIP local file header ("PK\3\4").
bool looks_like_zip(std::string_view bytes);

struct ZipEntry {
    std::string name;
    uint64_t data_offset = 0;  // of the entry's bytes in the archive
    uint64_t size = 0;
    uint32_t crc32 = 0;
};

class ZipArchive {
public:
    // `bytes` must outlive the archive. Throws igan::Error "<name>: <problem>" for anything
    // malformed: a missing or truncated central directory, entries outside the archive,
    // compression or encryption, duplicate names, local headers that disagree.
    ZipArchive(std::string_view bytes, std::string name_for_errors);

    const std::vector<ZipEntry>& entries() const { return entries_; }
    const ZipEntry* find(const std::string& name) const;  // nullptr when absent
    // The entry's bytes, after checking its CRC-32 (once per entry).
    std::string_view read(const ZipEntry& entry) const;
    const std::string& name() const { return name_; }

private:
    [[noreturn]] void fail(const std::string& what) const;

    std::string_view bytes_;
    std::string name_;
    std::vector<ZipEntry> entries_;
    std::map<std::string, size_t> index_;
    mutable std::vector<bool> verified_;
};

}  // namespace igan
