// igan export: the DeepZoom pyramid's full-resolution tiles and the BigTIFF read back with
// libtiff equal the pixels `igan generate` writes for the same rectangle; coarser DeepZoom levels
// are 2x2 box filters; failed exports leave nothing behind.
#include <gtest/gtest.h>
#include <tiffio.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "igan/export.h"
#include "igan/igan.h"
#include "igan/image.h"

namespace igan {
namespace {

namespace fs = std::filesystem;

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
        std::ifstream f(g.out, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        expected_ = decode_png(ss.str());
    }
    static void TearDownTestSuite() {
        delete engine_;
        fs::remove_all(dir_);
    }
    static std::string read(const std::string& path) {
        std::ifstream f(path, std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
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
    std::vector<uint8_t> tile(size_t(TIFFTileSize(t)));
    for (uint32_t y0 = 0; y0 < h; y0 += th)
        for (uint32_t x0 = 0; x0 < w; x0 += tw) {
            ASSERT_GT(TIFFReadEncodedTile(t, TIFFComputeTile(t, x0, y0, 0, 0), tile.data(),
                                          tmsize_t(tile.size())),
                      0);
            for (uint32_t j = 0; j < th && y0 + j < h; ++j)
                ASSERT_EQ(0, std::memcmp(tile.data() + 3 * tw * j,
                                         expected_.pixels.data() + 3 * (w * (y0 + j) + x0),
                                         3 * std::min(tw, w - x0)))
                    << "tile at " << x0 << "," << y0 << " row " << j;
        }
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

}  // namespace
}  // namespace igan
