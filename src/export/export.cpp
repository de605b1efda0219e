// igan export: DeepZoom pyramids and tiled BigTIFFs streamed from Engine::stream_rows. Memory
// is one strip of render tiles plus, per pyramid level, one band of DeepZoom tile rows (or one
// band of TIFF tile rows): proportional to the width, independent of the height.
#include "igan/export.h"

#include <tiffio.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "igan/image.h"

namespace igan {

namespace fs = std::filesystem;

namespace {

std::string temp_suffix() { return ".tmp-" + std::to_string(::getpid()); }

void write_whole_file(const std::string& path, const std::string& data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(data.data(), std::streamsize(data.size()));
    f.close();
    if (!f) throw Error("cannot write " + path + ": " + std::strerror(errno));
}

std::string record_json(const Engine& engine, const ExportRequest& r) {
    const auto& g = r.region;
    return nlohmann::json{{"igan_version", version_string()},
                          {"model_sha256", engine.summary().sha256},
                          {"model_config", engine.summary().config_name},
                          {"seed", g.seed},
                          {"x", g.x},
                          {"y", g.y},
                          {"width", g.width},
                          {"height", g.height},
                          {"psi", g.psi}}
        .dump();
}

// ---- DeepZoom ------------------------------------------------------------------------------

// One pyramid level: receives its rows top to bottom, writes each row of DeepZoom tiles as soon
// as its last row (plus overlap) has arrived, and feeds the 2x2 box-filtered rows to the next
// coarser level.
class DziLevel {
public:
    DziLevel(int64_t level, int64_t width, int64_t height, int64_t tile, int64_t overlap,
             std::string dir, DziLevel* coarser)
        : level_(level),
          width_(width),
          height_(height),
          tile_(tile),
          overlap_(overlap),
          dir_(std::move(dir)),
          coarser_(coarser) {
        fs::create_directories(dir_);
    }

    int64_t files() const { return files_; }

    void push(const uint8_t* row) {
        rows_.emplace_back(row, row + 3 * width_);
        ++received_;
        flush(false);
        if (!coarser_) return;
        if (pending_.empty()) {
            pending_.assign(row, row + 3 * width_);
        } else {
            feed_coarser(pending_.data(), row);
            pending_.clear();
        }
    }

    void finish() {
        if (received_ != height_) throw Error("export: a DeepZoom level got too few rows");
        if (coarser_ && !pending_.empty()) feed_coarser(pending_.data(), nullptr);
        flush(true);
        if (coarser_) coarser_->finish();
    }

private:
    void feed_coarser(const uint8_t* a, const uint8_t* b) {
        const int64_t w = (width_ + 1) / 2;
        std::vector<uint8_t> out(size_t(3 * w));
        for (int64_t i = 0; i < w; ++i) {
            const int64_t x0 = 2 * i, x1 = std::min(2 * i + 1, width_ - 1);
            for (int c = 0; c < 3; ++c) {
                int sum = a[3 * x0 + c] + a[3 * x1 + c], n = 2;
                if (b) sum += b[3 * x0 + c] + b[3 * x1 + c], n = 4;
                out[size_t(3 * i + c)] = uint8_t((sum + n / 2) / n);
            }
        }
        coarser_->push(out.data());
    }

    // Writes every tile row whose rows are all here; drops the rows no later tile row needs.
    void flush(bool last) {
        while (next_row_ * tile_ < height_) {
            const int64_t y0 = std::max<int64_t>(0, next_row_ * tile_ - overlap_);
            const int64_t y1 = std::min(height_, (next_row_ + 1) * tile_ + overlap_);
            if (received_ < y1 && !last) return;
            const int64_t cols = (width_ + tile_ - 1) / tile_;
            std::vector<uint8_t> buf;
            for (int64_t col = 0; col < cols; ++col) {
                const int64_t x0 = std::max<int64_t>(0, col * tile_ - overlap_);
                const int64_t x1 = std::min(width_, (col + 1) * tile_ + overlap_);
                const int64_t w = x1 - x0, h = y1 - y0;
                buf.resize(size_t(3 * w * h));
                for (int64_t j = 0; j < h; ++j) {
                    const auto& src = rows_[size_t(y0 + j - first_)];
                    std::memcpy(buf.data() + 3 * w * j, src.data() + 3 * x0, size_t(3 * w));
                }
                write_whole_file(
                    dir_ + "/" + std::to_string(col) + "_" + std::to_string(next_row_) + ".png",
                    encode_png(buf.data(), w, h));
                ++files_;
            }
            ++next_row_;
            const int64_t keep_from = std::max<int64_t>(0, next_row_ * tile_ - overlap_);
            while (first_ < keep_from && !rows_.empty()) {
                rows_.pop_front();
                ++first_;
            }
        }
    }

    int64_t level_, width_, height_, tile_, overlap_;
    std::string dir_;
    DziLevel* coarser_;
    std::deque<std::vector<uint8_t>> rows_;  // rows [first_, first_ + rows_.size())
    int64_t first_ = 0, received_ = 0, next_row_ = 0, files_ = 0;
    std::vector<uint8_t> pending_;  // an even row waiting for its partner (for the next level)
};

ExportResult export_dzi(const Engine& engine, const ExportRequest& r, const ProgressFn& progress) {
    const auto& g = r.region;
    const std::string base = r.out.substr(0, r.out.size() - 4);
    const std::string files_dir = base + "_files";
    const std::string tmp_dir = files_dir + temp_suffix();
    fs::remove_all(tmp_dir);
    const int64_t max_level =
        int64_t(std::ceil(std::log2(double(std::max(g.width, g.height))) - 1e-12));
    ExportResult result;
    result.levels = max_level + 1;
    try {
        std::vector<std::unique_ptr<DziLevel>> levels(size_t(max_level + 1));
        for (int64_t l = 0; l <= max_level; ++l) {
            const int64_t div = int64_t(1) << (max_level - l);
            levels[size_t(l)] = std::make_unique<DziLevel>(
                l, (g.width + div - 1) / div, (g.height + div - 1) / div, r.dzi_tile, r.dzi_overlap,
                tmp_dir + "/" + std::to_string(l), l > 0 ? levels[size_t(l - 1)].get() : nullptr);
        }
        DziLevel& top = *levels.back();
        engine.stream_rows(
            g,
            [&](const uint8_t* rows, int64_t, int64_t count) {
                for (int64_t j = 0; j < count; ++j) top.push(rows + 3 * g.width * j);
            },
            progress);
        top.finish();
        for (const auto& l : levels) result.files += l->files();
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp_dir, ec);
        throw;
    }
    // Replace an older pyramid of the same name, then publish the descriptor last.
    const std::string old_dir = files_dir + ".old" + temp_suffix();
    std::error_code ec;
    if (fs::exists(files_dir)) fs::rename(files_dir, old_dir);
    fs::rename(tmp_dir, files_dir);
    fs::remove_all(old_dir, ec);
    const std::string xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" Format=\"png\" Overlap=\"" +
        std::to_string(r.dzi_overlap) + "\" TileSize=\"" + std::to_string(r.dzi_tile) +
        "\">\n  <Size Width=\"" + std::to_string(g.width) + "\" Height=\"" +
        std::to_string(g.height) + "\"/>\n</Image>\n";
    const std::string tmp_xml = r.out + temp_suffix();
    write_whole_file(tmp_xml, xml);
    fs::rename(tmp_xml, r.out);
    result.path = r.out;
    return result;
}

// ---- BigTIFF -------------------------------------------------------------------------------

thread_local std::string t_tiff_error;

void on_tiff_error(const char* module, const char* fmt, va_list ap) {
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    t_tiff_error = std::string(module ? module : "libtiff") + ": " + buf;
}

void on_tiff_warning(const char*, const char*, va_list) {}

struct TiffCloser {
    void operator()(TIFF* t) const {
        if (t) TIFFClose(t);
    }
};

ExportResult export_bigtiff(const Engine& engine, const ExportRequest& r,
                            const ProgressFn& progress) {
    static const bool handlers = [] {
        TIFFSetErrorHandler(on_tiff_error);
        TIFFSetWarningHandler(on_tiff_warning);
        return true;
    }();
    (void)handlers;
    const auto& g = r.region;
    const std::string tmp = r.out + temp_suffix();
    t_tiff_error.clear();
    auto fail = [&](const std::string& what) -> Error {
        return Error("cannot write " + r.out + ": " + what +
                     (t_tiff_error.empty() ? "" : " (" + t_tiff_error + ")"));
    };
    try {
        std::unique_ptr<TIFF, TiffCloser> tif(TIFFOpen(tmp.c_str(), "w8"));  // 8: BigTIFF
        if (!tif) throw fail("TIFFOpen");
        TIFF* t = tif.get();
        const uint16_t compression = r.compression == "deflate" ? COMPRESSION_ADOBE_DEFLATE
                                     : r.compression == "lzw"   ? COMPRESSION_LZW
                                                                : COMPRESSION_NONE;
        const std::string record = record_json(engine, r);
        const std::string software = "igan " + version_string();
        bool ok = TIFFSetField(t, TIFFTAG_IMAGEWIDTH, uint32_t(g.width)) &&
                  TIFFSetField(t, TIFFTAG_IMAGELENGTH, uint32_t(g.height)) &&
                  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8) &&
                  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 3) &&
                  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB) &&
                  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
                  TIFFSetField(t, TIFFTAG_COMPRESSION, compression) &&
                  TIFFSetField(t, TIFFTAG_TILEWIDTH, uint32_t(r.tiff_tile)) &&
                  TIFFSetField(t, TIFFTAG_TILELENGTH, uint32_t(r.tiff_tile)) &&
                  TIFFSetField(t, TIFFTAG_SOFTWARE, software.c_str()) &&
                  TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, record.c_str());
        if (ok && compression != COMPRESSION_NONE)
            ok = TIFFSetField(t, TIFFTAG_PREDICTOR, PREDICTOR_HORIZONTAL);
        if (!ok) throw fail("TIFFSetField");
        const int64_t T = r.tiff_tile;
        std::vector<uint8_t> band(size_t(3 * g.width * T));
        std::vector<uint8_t> tile(size_t(3 * T * T));
        int64_t band_rows = 0, band_y0 = 0;
        auto flush_band = [&] {
            for (int64_t x0 = 0; x0 < g.width; x0 += T) {
                const int64_t w = std::min(T, g.width - x0);
                std::fill(tile.begin(), tile.end(), 0);
                for (int64_t j = 0; j < band_rows; ++j)
                    std::memcpy(tile.data() + 3 * T * j, band.data() + 3 * (g.width * j + x0),
                                size_t(3 * w));
                const ttile_t index = TIFFComputeTile(t, uint32_t(x0), uint32_t(band_y0), 0, 0);
                if (TIFFWriteEncodedTile(t, index, tile.data(), tmsize_t(tile.size())) < 0)
                    throw fail("TIFFWriteEncodedTile");
            }
            band_y0 += band_rows;
            band_rows = 0;
        };
        engine.stream_rows(
            g,
            [&](const uint8_t* rows, int64_t, int64_t count) {
                for (int64_t j = 0; j < count; ++j) {
                    std::memcpy(band.data() + 3 * g.width * band_rows, rows + 3 * g.width * j,
                                size_t(3 * g.width));
                    if (++band_rows == T) flush_band();
                }
            },
            progress);
        if (band_rows > 0) flush_band();
        if (!TIFFWriteDirectory(t)) throw fail("TIFFWriteDirectory");
        TIFF* raw = tif.release();
        TIFFClose(raw);
        if (!t_tiff_error.empty()) throw fail("TIFFClose");
        fs::rename(tmp, r.out);
    } catch (...) {
        std::error_code ec;
        fs::remove(tmp, ec);
        throw;
    }
    ExportResult result;
    result.path = r.out;
    result.files = 1;
    return result;
}

}  // namespace

void validate_export_request(const ExportRequest& r) {
    std::vector<std::string> problems;
    if (r.format != "dzi" && r.format != "bigtiff")
        problems.push_back("--format must be dzi or bigtiff");
    if (r.out.empty()) problems.push_back("--out is required");
    if (r.format == "dzi" && (r.out.size() < 5 || r.out.compare(r.out.size() - 4, 4, ".dzi")))
        problems.push_back("--out must end in .dzi (the tiles go to NAME_files/)");
    if (r.dzi_tile < 16 || r.dzi_tile > 4096)
        problems.push_back("--tile-size must be in [16, 4096]");
    if (r.dzi_overlap < 0 || r.dzi_overlap > 16) problems.push_back("--overlap must be in [0, 16]");
    if (r.tiff_tile < 16 || r.tiff_tile > 4096 || r.tiff_tile % 16)
        problems.push_back("--tiff-tile must be a multiple of 16 in [16, 4096]");
    if (r.compression != "none" && r.compression != "deflate" && r.compression != "lzw")
        problems.push_back("--compression must be none, deflate or lzw");
    if (r.region.width > 0xffffffffLL || r.region.height > 0xffffffffLL)
        problems.push_back("a TIFF holds at most 2^32-1 pixels per side");
    if (!problems.empty()) {
        std::string all;
        for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
        throw UsageError(all);
    }
}

ExportResult run_export(const Engine& engine, const ExportRequest& request,
                        const ProgressFn& progress) {
    validate_export_request(request);
    engine.validate(request.region, true);
    const auto start = std::chrono::steady_clock::now();
    auto result = request.format == "dzi" ? export_dzi(engine, request, progress)
                                          : export_bigtiff(engine, request, progress);
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

}  // namespace igan
