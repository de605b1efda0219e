// igan export: the DeepZoom pyramid's full-resolution tiles and the BigTIFF read back with
// libtiff equal the pixels `igan generate` writes for the same rectangle; coarser DeepZoom levels
// are 2x2 box filters; failed exports leave nothing behind. PMTiles archives, read back by a
// reader written here from the v3 spec, hold exactly the DeepZoom tiles (identical tiles once,
// leaf directories when the root would not fit); COGs read back with libtiff tile for tile, their
// directories before their tile data, coarsest level first.
#include <gtest/gtest.h>
#include <png.h>
#include <tiffio.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "export/pmtiles.h"
#include "igan/export.h"
#include "igan/igan.h"
#include "igan/image.h"

namespace igan {
namespace {

namespace fs = std::filesystem;

std::string read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// ---- a minimal PMTiles v3 reader ----------------------------------------------------------

std::string gunzip(const std::string& in) {
    z_stream zs{};
    EXPECT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);  // gzip only
    std::string out(1 << 16, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = uInt(in.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        if (zs.total_out == out.size()) out.resize(out.size() * 2);
        zs.next_out = reinterpret_cast<Bytef*>(out.data()) + zs.total_out;
        zs.avail_out = uInt(out.size() - zs.total_out);
        rc = inflate(&zs, Z_NO_FLUSH);
    }
    EXPECT_EQ(rc, Z_STREAM_END);
    EXPECT_EQ(zs.avail_in, 0u);
    out.resize(zs.total_out);
    inflateEnd(&zs);
    return out;
}

uint64_t le(const std::string& s, size_t at, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | uint8_t(s[at + size_t(i)]);
    return v;
}

std::vector<PmtilesEntry> read_directory(const std::string& bytes) {
    size_t at = 0;
    auto varint = [&] {
        uint64_t v = 0;
        for (int shift = 0;; shift += 7) {
            const uint8_t b = uint8_t(bytes.at(at++));
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
    };
    std::vector<PmtilesEntry> e(size_t{varint()});
    uint64_t id = 0;
    for (auto& x : e) x.tile_id = id += varint();
    for (auto& x : e) x.run_length = varint();
    for (auto& x : e) x.length = varint();
    for (size_t i = 0; i < e.size(); ++i) {
        const uint64_t v = varint();
        e[i].offset = v == 0 ? e[i - 1].offset + e[i - 1].length : v - 1;
    }
    EXPECT_EQ(at, bytes.size());
    return e;
}

// Tile IDs from the Hilbert curve walked forward (d -> x, y), the inverse of the writer's way.
std::map<std::tuple<int, uint64_t, uint64_t>, uint64_t> hilbert_ids(int max_zoom) {
    std::map<std::tuple<int, uint64_t, uint64_t>, uint64_t> ids;
    uint64_t base = 0;
    for (int z = 0; z <= max_zoom; ++z) {
        const uint64_t n = uint64_t(1) << z;
        for (uint64_t d = 0; d < n * n; ++d) {
            uint64_t x = 0, y = 0, t = d;
            for (uint64_t s = 1; s < n; s *= 2) {
                const uint64_t rx = 1 & (t / 2), ry = 1 & (t ^ rx);
                if (ry == 0) {
                    if (rx == 1) {
                        x = s - 1 - x;
                        y = s - 1 - y;
                    }
                    std::swap(x, y);
                }
                x += s * rx;
                y += s * ry;
                t /= 4;
            }
            ids[{z, x, y}] = base + d;
        }
        base += n * n;
    }
    return ids;
}

struct Archive {
    std::string bytes;
    std::vector<PmtilesEntry> root;

    explicit Archive(std::string data) : bytes(std::move(data)) {
        EXPECT_EQ(bytes.substr(0, 8), std::string("PMTiles\x03", 8));
        EXPECT_LE(field(0) + field(1), 16384u) << "root directory beyond the first 16 KiB";
        root = read_directory(gunzip(bytes.substr(field(0), field(1))));
    }
    // The 64-bit header fields after the magic: root offset, root length, metadata offset, ...
    uint64_t field(int i) const { return le(bytes, 8 + 8 * size_t(i), 8); }
    uint8_t byte(size_t at) const { return uint8_t(bytes[at]); }
    std::string metadata() const { return gunzip(bytes.substr(field(2), field(3))); }
    std::vector<PmtilesEntry> leaf(const PmtilesEntry& e) const {
        return read_directory(gunzip(bytes.substr(field(4) + e.offset, e.length)));
    }
    std::optional<std::string> tile(uint64_t id) const {
        std::vector<PmtilesEntry> dir = root;
        for (int depth = 0; depth < 4; ++depth) {
            auto it =
                std::upper_bound(dir.begin(), dir.end(), id,
                                 [](uint64_t v, const PmtilesEntry& e) { return v < e.tile_id; });
            if (it == dir.begin()) return std::nullopt;
            const PmtilesEntry& e = *--it;
            if (e.run_length == 0) {
                dir = leaf(e);
                continue;
            }
            if (id >= e.tile_id + e.run_length) return std::nullopt;
            EXPECT_LE(e.offset + e.length, field(7));
            return bytes.substr(field(6) + e.offset, e.length);
        }
        return std::nullopt;
    }
};

// Every entry, leaves expanded, in directory order.
std::vector<PmtilesEntry> all_entries(const Archive& a) {
    std::vector<PmtilesEntry> out;
    for (const auto& e : a.root) {
        if (e.run_length > 0) {
            out.push_back(e);
            continue;
        }
        for (const auto& l : a.leaf(e)) out.push_back(l);
    }
    return out;
}

// RGBA pixels of any PNG.
std::vector<uint8_t> decode_rgba(const std::string& png, int64_t side) {
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    EXPECT_TRUE(png_image_begin_read_from_memory(&image, png.data(), png.size()));
    EXPECT_EQ(int64_t(image.width), side);
    EXPECT_EQ(int64_t(image.height), side);
    image.format = PNG_FORMAT_RGBA;
    std::vector<uint8_t> out(PNG_IMAGE_SIZE(image));
    EXPECT_TRUE(png_image_finish_read(&image, nullptr, out.data(), 0, nullptr));
    return out;
}

// The 2x2 box filter export uses for coarser levels (odd edges average with themselves).
RgbImage halve(const RgbImage& in) {
    RgbImage out;
    out.width = (in.width + 1) / 2;
    out.height = (in.height + 1) / 2;
    out.pixels.resize(size_t(3 * out.width * out.height));
    for (int64_t y = 0; y < out.height; ++y)
        for (int64_t x = 0; x < out.width; ++x)
            for (int c = 0; c < 3; ++c) {
                int sum = 0, n = 0;
                for (int64_t yy : {2 * y, 2 * y + 1})
                    for (int64_t xx : {2 * x, 2 * x + 1})
                        if (yy < in.height) {
                            sum += in.pixels[size_t(
                                3 * (in.width * yy + std::min(xx, in.width - 1)) + c)];
                            ++n;
                        }
                out.pixels[size_t(3 * (out.width * y + x) + c)] = uint8_t((sum + n / 2) / n);
            }
    return out;
}

// ---- PMTiles writer on synthetic tiles ----------------------------------------------------

TEST(Pmtiles, TileIdsFollowTheHilbertCurveOfTheSpec) {
    // Values from the spec's reference implementations.
    EXPECT_EQ(pmtiles_tile_id(0, 0, 0), 0u);
    EXPECT_EQ(pmtiles_tile_id(1, 0, 0), 1u);
    EXPECT_EQ(pmtiles_tile_id(1, 0, 1), 2u);
    EXPECT_EQ(pmtiles_tile_id(1, 1, 1), 3u);
    EXPECT_EQ(pmtiles_tile_id(1, 1, 0), 4u);
    EXPECT_EQ(pmtiles_tile_id(2, 1, 3), 11u);
    EXPECT_EQ(pmtiles_tile_id(3, 3, 0), 26u);
    EXPECT_EQ(pmtiles_tile_id(12, 3423, 1763), 19078479u);
    EXPECT_EQ(pmtiles_tile_id(20, 0, 0), 366503875925u);
    for (const auto& [zxy, id] : hilbert_ids(5)) {
        const auto& [z, x, y] = zxy;
        ASSERT_EQ(pmtiles_tile_id(z, x, y), id) << z << "/" << x << "/" << y;
    }
    EXPECT_THROW(pmtiles_tile_id(2, 4, 0), Error);
}

TEST(Pmtiles, DeduplicatesRunsAndSplitsLeafDirectories) {
    char tmpl[] = "/tmp/igan-pmtiles-test-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    const std::string path = std::string(tmpl) + "/t.pmtiles";
    // Zoom 5, all 1024 tiles, added in row order: the top-left quadrant (256 consecutive tile
    // IDs) holds one content, tiles with x % 4 == 1 elsewhere another, the rest are distinct.
    auto content = [](uint64_t x, uint64_t y) {
        if (x < 16 && y < 16) return std::string("quadrant");
        if (x % 4 == 1) return std::string("stripe");
        return "tile " + std::to_string(x) + "," + std::to_string(y);
    };
    PmtilesWriter w(path);
    w.root_limit = 200;  // forces leaves
    w.leaf_entries = 64;
    for (uint64_t y = 0; y < 32; ++y)
        for (uint64_t x = 0; x < 32; ++x) w.add(5, x, y, content(x, y));
    PmtilesInfo info;
    info.min_zoom = info.max_zoom = 5;
    const auto stats = w.finish(info, "{\"name\":\"t\"}");

    const Archive a(read(path));
    EXPECT_EQ(a.bytes.size(), stats.bytes);
    EXPECT_EQ(a.field(8), 1024u);                            // addressed tiles
    EXPECT_EQ(a.field(10), uint64_t(2 + 1024 - 256 - 192));  // contents
    EXPECT_EQ(a.field(10), uint64_t(stats.contents));
    EXPECT_EQ(a.byte(96), 1);  // clustered
    EXPECT_EQ(a.byte(97), 2);  // gzip directories
    EXPECT_EQ(a.byte(99), 2);  // png
    EXPECT_EQ(a.metadata(), "{\"name\":\"t\"}");
    // Leaves: the root points only to leaf directories, in tile-ID order.
    EXPECT_GT(stats.leaves, 1);
    EXPECT_EQ(int64_t(a.root.size()), stats.leaves);
    for (const auto& e : a.root) EXPECT_EQ(e.run_length, 0u);
    const auto entries = all_entries(a);
    EXPECT_EQ(a.field(9), entries.size());
    uint64_t addressed = 0, next_new = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
        addressed += entries[i].run_length;
        if (i > 0) {
            EXPECT_GE(entries[i].tile_id, entries[i - 1].tile_id + entries[i - 1].run_length);
        }
        // Clustered: a content's first use comes in tile-ID order, right after the previous one.
        if (entries[i].offset >= next_new) {
            EXPECT_EQ(entries[i].offset, next_new);
            next_new += entries[i].length;
        }
    }
    EXPECT_EQ(addressed, 1024u);
    EXPECT_EQ(next_new, a.field(7));  // the tile data holds each content once
    // The quadrant is one entry with a run of 256.
    EXPECT_TRUE(std::any_of(entries.begin(), entries.end(),
                            [](const PmtilesEntry& e) { return e.run_length == 256; }));
    for (uint64_t y = 0; y < 32; ++y)
        for (uint64_t x = 0; x < 32; ++x)
            ASSERT_EQ(a.tile(pmtiles_tile_id(5, x, y)).value_or("missing"), content(x, y))
                << x << "," << y;
    EXPECT_FALSE(a.tile(pmtiles_tile_id(4, 0, 0)));
    fs::remove_all(tmpl);
}

// Every tile of the TIFF's current directory against `image` (the tiles' padding ignored).
::testing::AssertionResult tiles_equal(TIFF* t, const RgbImage& image) {
    uint32_t w = 0, h = 0, tw = 0, th = 0;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
    if (int64_t(w) != image.width || int64_t(h) != image.height)
        return ::testing::AssertionFailure()
               << w << "x" << h << " against " << image.width << "x" << image.height;
    std::vector<uint8_t> tile(size_t(TIFFTileSize(t)));
    for (uint32_t y0 = 0; y0 < h; y0 += th)
        for (uint32_t x0 = 0; x0 < w; x0 += tw) {
            if (TIFFReadEncodedTile(t, TIFFComputeTile(t, x0, y0, 0, 0), tile.data(),
                                    tmsize_t(tile.size())) <= 0)
                return ::testing::AssertionFailure() << "tile at " << x0 << "," << y0 << " unread";
            for (uint32_t j = 0; j < th && y0 + j < h; ++j)
                if (std::memcmp(tile.data() + 3 * tw * j,
                                image.pixels.data() + 3 * (w * (y0 + j) + x0),
                                3 * std::min(tw, w - x0)))
                    return ::testing::AssertionFailure()
                           << "tile at " << x0 << "," << y0 << " row " << j << " differs";
        }
    return ::testing::AssertionSuccess();
}

// ---- exports of a rendered rectangle ------------------------------------------------------

struct ExportFixture : ::testing::Test {
    static void SetUpTestSuite() {
        char tmpl[] = "/tmp/igan-export-test-XXXXXX";
        ASSERT_TRUE(mkdtemp(tmpl));
        dir_ = tmpl;
        InitRequest init;
        init.config = "tiny";
        init.seed = 2;
        init.out = dir_ + "/tiny.safetensors";
        init_model(init);
        engine_ = new Engine(init.out);
        // The reference: what `igan generate` writes for the rectangle.
        region_.seed = 11;
        region_.x = -20;
        region_.y = -25;
        region_.width = 70;
        region_.height = 50;
        region_.tile = 32;
        GenerateRequest g = region_;
        g.out = dir_ + "/ref.png";
        engine_->generate(g);
        expected_ = decode_png(read(g.out));
    }
    static void TearDownTestSuite() {
        delete engine_;
        fs::remove_all(dir_);
    }
    // An archive export of the rectangle with 32-px tiles.
    static ExportRequest request(const std::string& format, const std::string& name) {
        ExportRequest r;
        r.region = region_;
        r.format = format;
        r.out = dir_ + "/" + name;
        r.map_tile = 32;
        r.tiff_tile = 32;
        return r;
    }

    static std::string dir_;
    static Engine* engine_;
    static GenerateRequest region_;
    static RgbImage expected_;
};
std::string ExportFixture::dir_;
Engine* ExportFixture::engine_ = nullptr;
GenerateRequest ExportFixture::region_;
RgbImage ExportFixture::expected_;

TEST_F(ExportFixture, DeepZoomPyramidMatchesGenerate) {
    ExportRequest r;
    r.region = region_;
    r.format = "dzi";
    r.out = dir_ + "/pyr.dzi";
    r.dzi_tile = 32;
    r.dzi_overlap = 1;
    const auto res = run_export(*engine_, r);
    EXPECT_EQ(res.levels, 8);  // ceil(log2(70)) + 1
    const std::string xml = read(r.out);
    EXPECT_NE(xml.find("TileSize=\"32\""), std::string::npos);
    EXPECT_NE(xml.find("Overlap=\"1\""), std::string::npos);
    EXPECT_NE(xml.find("<Size Width=\"70\" Height=\"50\"/>"), std::string::npos);
    const std::string files = dir_ + "/pyr_files/";
    // Full resolution (level 7): 3 x 2 tiles; each with its overlap equals generate's pixels.
    int64_t count = 0;
    for (int64_t row = 0; row < 2; ++row)
        for (int64_t col = 0; col < 3; ++col) {
            const auto tile = decode_png(
                read(files + "7/" + std::to_string(col) + "_" + std::to_string(row) + ".png"));
            const int64_t x0 = std::max<int64_t>(0, col * 32 - 1),
                          y0 = std::max<int64_t>(0, row * 32 - 1);
            const int64_t x1 = std::min<int64_t>(70, col * 32 + 33),
                          y1 = std::min<int64_t>(50, row * 32 + 33);
            ASSERT_EQ(tile.width, x1 - x0);
            ASSERT_EQ(tile.height, y1 - y0);
            for (int64_t j = 0; j < tile.height; ++j)
                ASSERT_EQ(0, std::memcmp(tile.pixels.data() + 3 * tile.width * j,
                                         expected_.pixels.data() + 3 * (70 * (y0 + j) + x0),
                                         size_t(3 * tile.width)))
                    << "tile " << col << "_" << row << " row " << j;
            ++count;
        }
    EXPECT_EQ(count, 6);
    // Level 6 (35 x 25): one 2x2 box filter of level 7.
    const auto l6 = decode_png(read(files + "6/0_0.png"));
    EXPECT_EQ(l6.width, 33);   // 32 + overlap on the right
    EXPECT_EQ(l6.height, 25);  // the whole level
    for (int64_t j : {0, 7, 24})
        for (int64_t i : {0, 13, 32})
            for (int c = 0; c < 3; ++c) {
                auto px = [&](int64_t y, int64_t x) {
                    return int(expected_.pixels[size_t(3 * (70 * y + x) + c)]);
                };
                const int sum = px(2 * j, 2 * i) + px(2 * j, 2 * i + 1) + px(2 * j + 1, 2 * i) +
                                px(2 * j + 1, 2 * i + 1);
                EXPECT_EQ(int(l6.pixels[size_t(3 * (33 * j + i) + c)]), (sum + 2) / 4);
            }
    // The coarsest level is one pixel.
    const auto l0 = decode_png(read(files + "0/0_0.png"));
    EXPECT_EQ(l0.width, 1);
    EXPECT_EQ(l0.height, 1);
    EXPECT_EQ(res.files, 6 + 2 + 1 + 1 + 1 + 1 + 1 + 1);
    EXPECT_FALSE(fs::exists(files + "8"));
}

TEST_F(ExportFixture, BigTiffMatchesGenerate) {
    ExportRequest r;
    r.region = region_;
    r.format = "bigtiff";
    r.out = dir_ + "/big.tif";
    r.tiff_tile = 32;
    run_export(*engine_, r);
    const std::string raw = read(r.out);
    ASSERT_GE(raw.size(), 8u);
    EXPECT_EQ(raw.substr(0, 4), std::string("II\x2b\0", 4));  // BigTIFF, version 43
    TIFF* t = TIFFOpen(r.out.c_str(), "r");
    ASSERT_TRUE(t);
    uint32_t w = 0, h = 0, tw = 0, th = 0;
    uint16_t compression = 0;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
    TIFFGetField(t, TIFFTAG_COMPRESSION, &compression);
    EXPECT_EQ(w, 70u);
    EXPECT_EQ(h, 50u);
    EXPECT_EQ(tw, 32u);
    EXPECT_EQ(compression, COMPRESSION_ADOBE_DEFLATE);
    char* desc = nullptr;
    ASSERT_TRUE(TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc));
    EXPECT_NE(std::string(desc).find("\"seed\":11"), std::string::npos);
    EXPECT_TRUE(tiles_equal(t, expected_));
    TIFFClose(t);
}

TEST_F(ExportFixture, BadRequestsAndFailuresLeaveNothing) {
    ExportRequest r;
    r.region = region_;
    r.format = "png";
    r.out = dir_ + "/x.dzi";
    EXPECT_THROW(run_export(*engine_, r), UsageError);
    r.format = "dzi";
    r.out = dir_ + "/x.png";
    EXPECT_THROW(run_export(*engine_, r), UsageError);
    r.format = "bigtiff";
    r.tiff_tile = 20;
    EXPECT_THROW(run_export(*engine_, r), UsageError);
    r.tiff_tile = 32;
    r.out = dir_ + "/nodir/x.tif";
    EXPECT_THROW(run_export(*engine_, r), Error);
    EXPECT_FALSE(fs::exists(dir_ + "/nodir"));
    for (const auto& e : fs::directory_iterator(dir_))
        EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(ExportFixture, PmtilesTilesEqualDeepZoomFilesAndGenerate) {
    ExportRequest r = request("pmtiles", "area.pmtiles");
    const auto res = run_export(*engine_, r);
    // 70 x 50 in 32-px tiles: zoom 2 (3 x 2 tiles) is native, zoom 0 one tile.
    EXPECT_EQ(res.levels, 3);
    EXPECT_EQ(res.tiles, 6 + 2 + 1);
    // The same pyramid as DeepZoom files without overlap.
    ExportRequest d = r;
    d.format = "dzi";
    d.out = dir_ + "/area.dzi";
    d.dzi_tile = 32;
    d.dzi_overlap = 0;
    const int64_t dzi_top = run_export(*engine_, d).levels - 1;

    const Archive a(read(r.out));
    EXPECT_EQ(a.byte(100), 0);  // min zoom
    EXPECT_EQ(a.byte(101), 2);  // max zoom
    EXPECT_EQ(a.field(8), 9u);
    const auto meta = nlohmann::json::parse(a.metadata());
    EXPECT_EQ(meta["format"], "png");
    EXPECT_EQ(meta["maxzoom"], 2);
    EXPECT_EQ(meta["igan"]["seed"], 11);
    EXPECT_EQ(meta["igan"]["x"], -20);
    EXPECT_EQ(meta["bounds"][0], -180.0);
    EXPECT_LT(double(meta["bounds"][2]), 180.0);  // 70 of the world's 128 pixels at zoom 2

    RgbImage level = expected_;
    int64_t seen = 0;
    for (int z = 2; z >= 0; --z) {
        const int64_t cols = (level.width + 31) / 32, rows = (level.height + 31) / 32;
        for (int64_t ty = 0; ty < (int64_t(1) << z); ++ty)
            for (int64_t tx = 0; tx < (int64_t(1) << z); ++tx) {
                const auto tile = a.tile(pmtiles_tile_id(z, uint64_t(tx), uint64_t(ty)));
                ASSERT_EQ(bool(tile), tx < cols && ty < rows) << z << "/" << tx << "/" << ty;
                if (!tile) continue;
                ++seen;
                const auto rgba = decode_rgba(*tile, 32);
                const auto file =
                    decode_png(read(dir_ + "/area_files/" + std::to_string(dzi_top - (2 - z)) +
                                    "/" + std::to_string(tx) + "_" + std::to_string(ty) + ".png"));
                for (int64_t y = 0; y < 32; ++y)
                    for (int64_t x = 0; x < 32; ++x) {
                        const uint8_t* p = rgba.data() + 4 * (32 * y + x);
                        const int64_t lx = 32 * tx + x, ly = 32 * ty + y;
                        if (lx >= level.width || ly >= level.height) {
                            ASSERT_EQ(p[3], 0) << "padding at " << x << "," << y;
                            continue;
                        }
                        ASSERT_EQ(p[3], 255);
                        ASSERT_EQ(0, std::memcmp(
                                         p, &level.pixels[size_t(3 * (level.width * ly + lx))], 3))
                            << "zoom " << z << " tile " << tx << "," << ty << " pixel " << x << ","
                            << y;
                        ASSERT_EQ(
                            0, std::memcmp(p, &file.pixels[size_t(3 * (file.width * y + x))], 3));
                    }
            }
        level = halve(level);
    }
    EXPECT_EQ(seen, 9);
}

TEST_F(ExportFixture, PmtilesStoresIdenticalTilesOnce) {
    // A canvas with a period of one tile repeats every tile along each row.
    ExportRequest r = request("pmtiles", "cyclic.pmtiles");
    r.region.x = 0;
    r.region.width = 128;
    r.region.height = 32;
    r.region.cyclic_width = 32;
    const auto res = run_export(*engine_, r);
    EXPECT_EQ(res.tiles, 4 + 2 + 1);
    EXPECT_EQ(res.unique_tiles, 3);
    const Archive a(read(r.out));
    EXPECT_EQ(a.field(10), 3u);
    EXPECT_LT(a.field(9), 7u);  // repeats along the Hilbert curve share entries
    const auto first = a.tile(pmtiles_tile_id(2, 0, 0));
    for (uint64_t x = 1; x < 4; ++x) EXPECT_EQ(a.tile(pmtiles_tile_id(2, x, 0)), first);
}

TEST_F(ExportFixture, PmtilesWebpTilesMatchThePngArchive) {
    if (!webp_available()) GTEST_SKIP() << "built without libwebp";
    ExportRequest r = request("pmtiles", "png-tiles.pmtiles");
    run_export(*engine_, r);
    const Archive png(read(r.out));
    r.tile_format = "webp";
    r.webp_quality = kWebpLossless;
    r.out = dir_ + "/lossless-tiles.pmtiles";
    run_export(*engine_, r);
    const Archive lossless(read(r.out));
    r.webp_quality = 80;
    r.out = dir_ + "/lossy-tiles.pmtiles";
    run_export(*engine_, r);
    const Archive lossy(read(r.out));
    EXPECT_EQ(lossless.byte(99), 4);  // tile type: WebP
    EXPECT_EQ(png.byte(99), 2);
    EXPECT_EQ(nlohmann::json::parse(lossless.metadata())["format"], "webp");

    // Every tile of the PNG archive, pixel for pixel inside the area (the padding is transparent).
    double squared_error = 0;
    int64_t compared = 0;
    for (int z = 2; z >= 0; --z) {
        for (uint64_t ty = 0; ty < (uint64_t(1) << z); ++ty)
            for (uint64_t tx = 0; tx < (uint64_t(1) << z); ++tx) {
                const uint64_t id = pmtiles_tile_id(z, tx, ty);
                const auto p = png.tile(id);
                ASSERT_EQ(bool(p), bool(lossless.tile(id)));
                ASSERT_EQ(bool(p), bool(lossy.tile(id)));
                if (!p) continue;
                const auto rgba = decode_rgba(*p, 32);
                const RgbImage exact = decode_webp(*lossless.tile(id));
                const RgbImage approx = decode_webp(*lossy.tile(id));
                ASSERT_EQ(exact.width, 32);
                ASSERT_EQ(approx.height, 32);
                for (int64_t i = 0; i < 32 * 32; ++i) {
                    if (rgba[size_t(4 * i + 3)] == 0) continue;
                    for (int c = 0; c < 3; ++c) {
                        const int want = rgba[size_t(4 * i + c)];
                        ASSERT_EQ(exact.pixels[size_t(3 * i + c)], want) << z << "/" << tx << "/"
                                                                         << ty << " pixel " << i;
                        const double d = double(approx.pixels[size_t(3 * i + c)]) - want;
                        squared_error += d * d;
                        ++compared;
                    }
                }
            }
    }
    ASSERT_GT(compared, 0);
    const double psnr = 10 * std::log10(255.0 * 255.0 / (squared_error / double(compared)));
    EXPECT_GT(psnr, 25.0) << "lossy WebP tiles at quality 80 (an untrained model: noise-like)";

    ExportRequest bad = request("dzi", "webp.dzi");
    bad.tile_format = "webp";
    EXPECT_THROW(validate_export_request(bad), UsageError);
    bad = request("pmtiles", "gif.pmtiles");
    bad.tile_format = "gif";
    EXPECT_THROW(validate_export_request(bad), UsageError);
    bad.tile_format = "webp";
    bad.webp_quality = 0;
    EXPECT_THROW(validate_export_request(bad), UsageError);
}

TEST_F(ExportFixture, CogReadsBackTileForTileWithOverviewsBeforeTheFullResolution) {
    ExportRequest r = request("cog", "area.tif");
    const auto res = run_export(*engine_, r);
    EXPECT_EQ(res.levels, 3);  // 70 x 50, 35 x 25 and 18 x 13
    EXPECT_EQ(uint64_t(fs::file_size(r.out)), res.bytes);
    TIFF* t = TIFFOpen(r.out.c_str(), "r");
    ASSERT_TRUE(t);
    RgbImage level = expected_;
    std::vector<uint64_t> first_offsets;
    uint64_t last_ifd = 0;
    for (int k = 0; k < 3; ++k) {
        ASSERT_TRUE(k == 0 || TIFFReadDirectory(t)) << "overview " << k << " missing";
        uint32_t w = 0, h = 0, tw = 0, th = 0, subfile = 0;
        uint16_t compression = 0, predictor = 0, spp = 0;
        TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
        TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
        TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
        TIFFGetField(t, TIFFTAG_SUBFILETYPE, &subfile);
        TIFFGetField(t, TIFFTAG_COMPRESSION, &compression);
        TIFFGetField(t, TIFFTAG_PREDICTOR, &predictor);
        TIFFGetField(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
        EXPECT_EQ(int64_t(w), level.width);
        EXPECT_EQ(int64_t(h), level.height);
        EXPECT_EQ(tw, 32u);
        EXPECT_EQ(th, 32u);
        EXPECT_EQ(subfile, k == 0 ? 0u : uint32_t(FILETYPE_REDUCEDIMAGE));
        EXPECT_EQ(compression, COMPRESSION_ADOBE_DEFLATE);
        EXPECT_EQ(predictor, PREDICTOR_HORIZONTAL);
        EXPECT_EQ(spp, 3);
        if (k == 0) {
            char* desc = nullptr;
            ASSERT_TRUE(TIFFGetField(t, TIFFTAG_IMAGEDESCRIPTION, &desc));
            EXPECT_NE(std::string(desc).find("\"seed\":11"), std::string::npos);
        }
        EXPECT_TRUE(tiles_equal(t, level)) << "level " << k;
        // Layout: every directory before any tile data; tiles row by row within a level.
        last_ifd = std::max<uint64_t>(last_ifd, TIFFCurrentDirOffset(t));
        uint64_t* offsets = nullptr;
        ASSERT_TRUE(TIFFGetField(t, TIFFTAG_TILEOFFSETS, &offsets));
        for (uint32_t i = 1; i < TIFFNumberOfTiles(t); ++i) EXPECT_GT(offsets[i], offsets[i - 1]);
        first_offsets.push_back(offsets[0]);
        level = halve(level);
    }
    EXPECT_FALSE(TIFFReadDirectory(t));
    TIFFClose(t);
    EXPECT_LT(last_ifd, first_offsets[2]);
    EXPECT_LT(first_offsets[2], first_offsets[1]);  // coarsest overview first
    EXPECT_LT(first_offsets[1], first_offsets[0]);  // full resolution last
}

TEST_F(ExportFixture, BadArchiveRequestsAndFailuresLeaveNothing) {
    ExportRequest r = request("cog", "x.tif");
    r.compression = "lzw";
    EXPECT_THROW(run_export(*engine_, r), UsageError);
    r.format = "pmtiles";
    r.map_tile = 8;
    EXPECT_THROW(run_export(*engine_, r), UsageError);
    r.map_tile = 32;
    r.out = dir_ + "/nodir/x.pmtiles";
    EXPECT_THROW(run_export(*engine_, r), Error);
    // Exports that fail midway leave no file and no spool.
    for (const char* format : {"pmtiles", "cog"}) {
        r.format = format;
        r.compression = "deflate";
        r.out = dir_ + "/x." + format;
        int calls = 0;
        EXPECT_THROW(run_export(*engine_, r,
                                [&](const Progress&) {
                                    if (++calls == 2) throw Error("stop");
                                }),
                     Error);
        EXPECT_EQ(calls, 2);
        EXPECT_FALSE(fs::exists(r.out));
    }
    for (const auto& e : fs::directory_iterator(dir_))
        EXPECT_EQ(e.path().string().find(".tmp-"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace igan
