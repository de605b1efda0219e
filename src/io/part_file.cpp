#include "io/part_file.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"

namespace igan {

namespace {

constexpr char kMagic[8] = {'I', 'G', 'A', 'N', 'P', 'R', 'T', '1'};
constexpr size_t kChunk = size_t(1) << 16;
constexpr uint64_t kMaxHeader = uint64_t(1) << 24;
constexpr size_t kMaxStep = size_t(1) << 30;  // bytes per zlib call (its counts are 32-bit)

}  // namespace

struct PartStreamState {
    std::string path;
    PartHeader header;
    z_stream z{};
    bool z_open = false;
    int64_t rows_done = 0;
    std::unique_ptr<AtomicFile> out;  // writer
    std::FILE* in = nullptr;          // reader
    std::vector<unsigned char> buf = std::vector<unsigned char>(kChunk);
    bool finished = false;

    ~PartStreamState() {
        if (z_open) out ? deflateEnd(&z) : inflateEnd(&z);
        if (in) std::fclose(in);
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw Error("part file " + path + ": " + what);
    }
    void deflate_some(const uint8_t* data, size_t size, int flush) {
        z.next_in = const_cast<Bytef*>(data);
        z.avail_in = uInt(size);
        do {
            z.next_out = buf.data();
            z.avail_out = uInt(buf.size());
            const int rc = deflate(&z, flush);
            if (rc == Z_STREAM_ERROR) fail("compression failed");
            out->write(buf.data(), buf.size() - z.avail_out);
        } while (z.avail_out == 0);
    }
};

PartWriter::PartWriter(const std::string& path, const PartHeader& h)
    : state_(std::make_unique<PartStreamState>()) {
    auto& s = *state_;
    s.path = path;
    s.header = h;
    s.out = std::make_unique<AtomicFile>(path);
    nlohmann::json text = nlohmann::json::array();
    for (const auto& [k, v] : h.text) text.push_back({k, v});
    const std::string json = nlohmann::json{{"width", h.width}, {"height", h.height},
                                            {"y0", h.y0},       {"rows", h.rows},
                                            {"index", h.index}, {"count", h.count},
                                            {"text", text}}
                                 .dump();
    const uint64_t n = json.size();
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = (unsigned char)(n >> (8 * i));
    s.out->write(kMagic, sizeof kMagic);
    s.out->write(len, sizeof len);
    s.out->write(json.data(), json.size());
    if (deflateInit(&s.z, 1) != Z_OK) s.fail("cannot start compression");
    s.z_open = true;
}

PartWriter::~PartWriter() = default;

void PartWriter::write_rows(const uint8_t* rgb, int64_t n_rows) {
    auto& s = *state_;
    if (s.finished) s.fail("already finished");
    if (n_rows < 0 || s.rows_done + n_rows > s.header.rows)
        s.fail("more rows than the declared " + std::to_string(s.header.rows));
    size_t left = size_t(3 * s.header.width) * size_t(n_rows);
    for (; left > 0; left -= std::min(left, kMaxStep), rgb += kMaxStep)
        s.deflate_some(rgb, std::min(left, kMaxStep), Z_NO_FLUSH);
    s.rows_done += n_rows;
}

void PartWriter::finish() {
    auto& s = *state_;
    if (s.rows_done != s.header.rows)
        s.fail(std::to_string(s.rows_done) + " rows written of " + std::to_string(s.header.rows));
    s.deflate_some(nullptr, 0, Z_FINISH);
    s.out->commit();
    s.finished = true;
}

PartReader::PartReader(const std::string& path) : state_(std::make_unique<PartStreamState>()) {
    auto& s = *state_;
    s.path = path;
    s.in = std::fopen(path.c_str(), "rb");
    if (!s.in) throw Error("cannot open " + path + ": " + std::strerror(errno));
    char magic[8];
    unsigned char len[8];
    if (std::fread(magic, 1, 8, s.in) != 8 || std::memcmp(magic, kMagic, 8) != 0)
        s.fail("not an igan part file (written by igan generate --shard)");
    if (std::fread(len, 1, 8, s.in) != 8) s.fail("truncated header");
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(len[i]) << (8 * i);
    if (n > kMaxHeader) s.fail("header too large");
    std::string json(n, '\0');
    if (std::fread(json.data(), 1, n, s.in) != n) s.fail("truncated header");
    try {
        const auto j = nlohmann::json::parse(json);
        auto& h = s.header;
        h.width = j.at("width").get<int64_t>();
        h.height = j.at("height").get<int64_t>();
        h.y0 = j.at("y0").get<int64_t>();
        h.rows = j.at("rows").get<int64_t>();
        h.index = j.at("index").get<int64_t>();
        h.count = j.at("count").get<int64_t>();
        for (const auto& kv : j.at("text"))
            h.text.emplace_back(kv.at(0).get<std::string>(), kv.at(1).get<std::string>());
    } catch (const nlohmann::json::exception& e) {
        s.fail(std::string("bad header: ") + e.what());
    }
    const auto& h = s.header;
    if (h.width <= 0 || h.height <= 0 || h.width > (int64_t(1) << 31) || h.y0 < 0 || h.rows < 0 ||
        h.y0 + h.rows > h.height || h.count < 1 || h.index < 0 || h.index >= h.count)
        s.fail("inconsistent header");
    if (inflateInit(&s.z) != Z_OK) s.fail("cannot start decompression");
    s.z_open = true;
}

PartReader::~PartReader() = default;

const PartHeader& PartReader::header() const { return state_->header; }

void PartReader::read_rows(uint8_t* rgb, int64_t n_rows) {
    auto& s = *state_;
    if (n_rows < 0 || s.rows_done + n_rows > s.header.rows) s.fail("reading past its rows");
    size_t left = size_t(3 * s.header.width) * size_t(n_rows);
    s.z.next_out = rgb;
    s.z.avail_out = 0;
    while (left > 0 || s.z.avail_out > 0) {
        if (s.z.avail_out == 0) {
            s.z.avail_out = uInt(std::min(left, kMaxStep));
            left -= s.z.avail_out;
        }
        bool eof = false;
        if (s.z.avail_in == 0) {
            const size_t got = std::fread(s.buf.data(), 1, s.buf.size(), s.in);
            eof = got == 0;
            s.z.next_in = s.buf.data();
            s.z.avail_in = uInt(got);
        }
        const uInt before = s.z.avail_out;
        const int rc = inflate(&s.z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) s.fail("corrupt pixel data");
        if ((rc == Z_STREAM_END || eof) && s.z.avail_out > 0 && s.z.avail_out == before)
            s.fail("truncated pixel data");
    }
    s.rows_done += n_rows;
}

}  // namespace igan
