#pragma once
// Part files of a sharded render (`igan generate --shard i/n`): a JSON header naming the whole
// image and this part's rows, then the part's 8-bit RGB rows, deflated. Written through a
// temporary file and renamed, like every output; read back row by row in constant memory.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace igan {

struct PartHeader {
    int64_t width = 0, height = 0;  // the whole image
    int64_t y0 = 0, rows = 0;       // this part: rows [y0, y0 + rows)
    int64_t index = 0, count = 1;   // shard index of count
    // The text chunks of the whole image's PNG, in order (the generation record).
    std::vector<std::pair<std::string, std::string>> text;
};

struct PartStreamState;  // zlib state and the file, defined in part_file.cpp

class PartWriter {
public:
    PartWriter(const std::string& path, const PartHeader& header);
    ~PartWriter();  // without finish(), the temporary file is removed
    PartWriter(const PartWriter&) = delete;
    PartWriter& operator=(const PartWriter&) = delete;
    // `rgb` holds n_rows * width * 3 bytes.
    void write_rows(const uint8_t* rgb, int64_t n_rows);
    // Throws unless exactly header.rows rows were written.
    void finish();

private:
    std::unique_ptr<PartStreamState> state_;
};

class PartReader {
public:
    // Throws igan::Error naming the file when it is not a part file or its header is invalid.
    explicit PartReader(const std::string& path);
    ~PartReader();
    PartReader(const PartReader&) = delete;
    PartReader& operator=(const PartReader&) = delete;
    const PartHeader& header() const;
    // The next n_rows rows; throws on truncated or corrupt data.
    void read_rows(uint8_t* rgb, int64_t n_rows);

private:
    std::unique_ptr<PartStreamState> state_;
};

}  // namespace igan
