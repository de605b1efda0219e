// igan export: DeepZoom pyramids, PMTiles archives, COGs and tiled BigTIFFs streamed from
// Engine::stream_rows. Memory is one strip of render tiles plus, per pyramid level, one band of
// tile rows: proportional to the width, independent of the height (archives also keep a few
// dozen bytes per tile of index, and spool the encoded tiles to disk until they are assembled).
#include "igan/export.h"

#include <png.h>
#include <tiffio.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "export/cog.h"
#include "export/pmtiles.h"
#include "export/pyramid.h"
#include "igan/image.h"
#include "io/atomic_file.h"

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

// The generation record, as generate writes it.
nlohmann::json record_json(const RenderJob& job) { return nlohmann::json::parse(job.record_json()); }

// Renders the rectangle into the pyramid, row by row.
void stream_into(const Engine& engine, const RenderJob& job, Pyramid& pyramid,
                 const ProgressFn& progress) {
    const int64_t width = job.request().width;
    engine.stream_rows(
        job,
        [&](const uint8_t* rows, int64_t, int64_t count) {
            for (int64_t j = 0; j < count; ++j) pyramid.push(rows + 3 * width * j);
        },
        progress);
    pyramid.finish();
}

// ---- DeepZoom ------------------------------------------------------------------------------

ExportResult export_dzi(const Engine& engine, const RenderJob& job, const ExportRequest& r,
                        const ProgressFn& progress) {
    const auto& g = r.region;
    const std::string base = r.out.substr(0, r.out.size() - 4);
    const std::string files_dir = base + "_files";
    // DeepZoom numbers levels from 1 pixel (level 0) up to the full resolution.
    const int64_t max_level =
        int64_t(std::ceil(std::log2(double(std::max(g.width, g.height))) - 1e-12));
    ExportResult result;
    result.levels = max_level + 1;
    AtomicDir files(files_dir);  // removed again if the render fails
    {
        const int64_t T = r.dzi_tile, overlap = r.dzi_overlap;
        std::vector<uint8_t> buf;
        Pyramid pyramid(g.width, g.height, max_level + 1, T, overlap, [&](const Pyramid::Band& b) {
            const std::string dir = files.temp_path() + "/" + std::to_string(max_level - b.level);
            if (b.row == 0) fs::create_directories(dir);
            for (int64_t col = 0; col < b.columns(T); ++col) {
                const int64_t x0 = std::max<int64_t>(0, col * T - overlap);
                const int64_t x1 = std::min(b.width, (col + 1) * T + overlap);
                buf.resize(size_t(3 * (x1 - x0) * (b.y1 - b.y0)));
                b.copy(x0, x1, b.y0, b.y1, buf.data(), 3 * (x1 - x0));
                write_whole_file(
                    dir + "/" + std::to_string(col) + "_" + std::to_string(b.row) + ".png",
                    encode_png(buf.data(), x1 - x0, b.y1 - b.y0));
                ++result.files;
            }
        });
        stream_into(engine, job, pyramid, progress);
    }
    // Replace an older pyramid of the same name, then publish the descriptor last.
    const std::string old_dir = files_dir + ".old" + temp_suffix();
    std::error_code ec;
    if (fs::exists(files_dir)) fs::rename(files_dir, old_dir);
    files.commit();
    fs::remove_all(old_dir, ec);
    const std::string xml =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" Format=\"png\" Overlap=\"" +
        std::to_string(r.dzi_overlap) + "\" TileSize=\"" + std::to_string(r.dzi_tile) +
        "\">\n  <Size Width=\"" + std::to_string(g.width) + "\" Height=\"" +
        std::to_string(g.height) + "\"/>\n</Image>\n";
    AtomicFile descriptor(r.out);
    descriptor.write(xml.data(), xml.size());
    descriptor.commit();
    result.path = r.out;
    return result;
}

// ---- PMTiles -------------------------------------------------------------------------------

// An RGBA PNG: map tiles past the area's edge are transparent, so viewers show their background.
std::string encode_png_rgba(const uint8_t* rgba, int64_t side) {
    png_image image;
    std::memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = image.height = png_uint_32(side);
    image.format = PNG_FORMAT_RGBA;
    std::string out(PNG_IMAGE_PNG_SIZE_MAX(image), '\0');
    png_alloc_size_t size = out.size();
    if (!png_image_write_to_memory(&image, out.data(), &size, 0, rgba, 0, nullptr))
        throw Error(std::string("encode_png: ") + image.message);
    out.resize(size);
    return out;
}

// Tile `col` of a band as a side x side PNG or WebP: RGB when the area covers it, else RGBA
// (transparent past the area's edge).
std::string map_tile(const Pyramid::Band& b, int64_t col, const ExportRequest& r,
                     std::vector<uint8_t>* buf) {
    const int64_t side = r.map_tile;
    const bool webp = r.tile_format == "webp";
    const int64_t x0 = col * side, x1 = std::min(b.width, x0 + side), h = b.y1 - b.y0;
    if (x1 - x0 == side && h == side) {
        buf->resize(size_t(3 * side * side));
        b.copy(x0, x1, b.y0, b.y1, buf->data(), 3 * side);
        return webp ? encode_webp(buf->data(), side, side, r.webp_quality)
                    : encode_png(buf->data(), side, side);
    }
    buf->assign(size_t(4 * side * side), 0);
    for (int64_t y = 0; y < h; ++y) {
        const uint8_t* src = b.line(b.y0 + y) + 3 * x0;
        uint8_t* dst = buf->data() + 4 * side * y;
        for (int64_t x = 0; x < x1 - x0; ++x) {
            std::memcpy(dst + 4 * x, src + 3 * x, 3);
            dst[4 * x + 3] = 255;
        }
    }
    return webp ? encode_webp_rgba(buf->data(), side, side, r.webp_quality)
                : encode_png_rgba(buf->data(), side);
}

// Web Mercator longitude and latitude (degrees) of a pixel position at a zoom whose world is
// `world` pixels wide: the area sits at the world's top-left corner.
double mercator_lon(double x, double world) { return x / world * 360.0 - 180.0; }
double mercator_lat(double y, double world) {
    return std::atan(std::sinh(M_PI * (1.0 - 2.0 * y / world))) * 180.0 / M_PI;
}

ExportResult export_pmtiles(const Engine& engine, const RenderJob& job, const ExportRequest& r,
                            const ProgressFn& progress) {
    const auto& g = r.region;
    const int64_t T = r.map_tile;
    const int64_t levels = levels_to_fit(g.width, g.height, T);
    const int max_zoom = int(levels - 1);
    PmtilesWriter writer(r.out);
    std::vector<uint8_t> buf;
    Pyramid pyramid(g.width, g.height, levels, T, 0, [&](const Pyramid::Band& b) {
        for (int64_t col = 0; col < b.columns(T); ++col)
            writer.add(max_zoom - int(b.level), uint64_t(col), uint64_t(b.row),
                       map_tile(b, col, r, &buf));
    });
    stream_into(engine, job, pyramid, progress);

    PmtilesInfo info;
    info.tile_type = r.tile_format == "webp" ? PmtilesTileType::kWebp : PmtilesTileType::kPng;
    info.min_zoom = 0;
    info.max_zoom = max_zoom;
    const double world = double(T) * double(int64_t(1) << max_zoom);
    info.min_lon = mercator_lon(0, world);
    info.max_lon = mercator_lon(double(g.width), world);
    info.max_lat = mercator_lat(0, world);
    info.min_lat = mercator_lat(double(g.height), world);
    info.center_lon = mercator_lon(g.width / 2.0, world);
    info.center_lat = mercator_lat(g.height / 2.0, world);
    auto record = record_json(job);
    record["tile_size"] = T;
    const std::string name = fs::path(r.out).stem().string();
    const std::string description = "igan canvas, seed " + std::to_string(g.seed) +
                                    ": tile 0/0/0 starts at canvas pixel (" + std::to_string(g.x) +
                                    ", " + std::to_string(g.y) + "); zoom " +
                                    std::to_string(max_zoom) + " is the native resolution";
    const nlohmann::json metadata = {
        {"name", name},
        {"description", description},
        {"attribution", "igan"},
        {"type", "baselayer"},
        {"format", r.tile_format},
        {"minzoom", 0},
        {"maxzoom", max_zoom},
        {"bounds", {info.min_lon, info.min_lat, info.max_lon, info.max_lat}},
        {"center", {info.center_lon, info.center_lat, 0}},
        {"igan", record}};
    const auto stats = writer.finish(info, metadata.dump());
    ExportResult result;
    result.path = r.out;
    result.files = 1;
    result.levels = levels;
    result.tiles = stats.addressed;
    result.unique_tiles = stats.contents;
    result.bytes = stats.bytes;
    return result;
}

// ---- COG -----------------------------------------------------------------------------------

ExportResult export_cog(const Engine& engine, const RenderJob& job, const ExportRequest& r,
                        const ProgressFn& progress) {
    const auto& g = r.region;
    const int64_t T = r.tiff_tile;
    const int64_t levels = levels_to_fit(g.width, g.height, T);
    std::vector<CogWriter::Level> dims;
    for (int64_t k = 0, w = g.width, h = g.height; k < levels;
         ++k, w = (w + 1) / 2, h = (h + 1) / 2)
        dims.push_back({w, h});
    CogWriter writer(r.out, dims, T, r.compression == "deflate", record_json(job).dump(),
                     "igan " + version_string());
    std::vector<uint8_t> tile(size_t(3 * T * T));
    int64_t tiles = 0;
    Pyramid pyramid(g.width, g.height, levels, T, 0, [&](const Pyramid::Band& b) {
        for (int64_t col = 0; col < b.columns(T); ++col) {
            std::fill(tile.begin(), tile.end(), 0);
            b.copy(col * T, std::min(b.width, (col + 1) * T), b.y0, b.y1, tile.data(), 3 * T);
            writer.add(b.level, col, b.row, tile.data());
            ++tiles;
        }
    });
    stream_into(engine, job, pyramid, progress);
    ExportResult result;
    result.path = r.out;
    result.files = 1;
    result.levels = levels;
    result.tiles = tiles;
    result.unique_tiles = tiles;
    result.bytes = writer.finish();
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

ExportResult export_bigtiff(const Engine& engine, const RenderJob& job, const ExportRequest& r,
                            const ProgressFn& progress) {
    static const bool handlers = [] {
        TIFFSetErrorHandler(on_tiff_error);
        TIFFSetWarningHandler(on_tiff_warning);
        return true;
    }();
    (void)handlers;
    const auto& g = r.region;
    // libtiff writes the temporary file through its own descriptor; commit() then fsyncs the
    // file (whichever descriptor wrote it) and renames it into place.
    AtomicFile out(r.out);
    t_tiff_error.clear();
    auto fail = [&](const std::string& what) -> Error {
        return Error("cannot write " + r.out + ": " + what +
                     (t_tiff_error.empty() ? "" : " (" + t_tiff_error + ")"));
    };
    {
        std::unique_ptr<TIFF, TiffCloser> tif(TIFFOpen(out.temp_path().c_str(), "w8"));  // 8: BigTIFF
        if (!tif) throw fail("TIFFOpen");
        TIFF* t = tif.get();
        const uint16_t compression = r.compression == "deflate" ? COMPRESSION_ADOBE_DEFLATE
                                     : r.compression == "lzw"   ? COMPRESSION_LZW
                                                                : COMPRESSION_NONE;
        const std::string record = record_json(job).dump();
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
            job,
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
        out.commit();
    }
    ExportResult result;
    result.path = r.out;
    result.files = 1;
    return result;
}

}  // namespace

void validate_export_request(const ExportRequest& r) {
    std::vector<std::string> problems;
    if (r.format != "dzi" && r.format != "bigtiff" && r.format != "pmtiles" && r.format != "cog")
        problems.push_back("--format must be dzi, pmtiles, cog or bigtiff");
    if (r.out.empty()) problems.push_back("--out is required");
    if (r.format == "dzi" && (r.out.size() < 5 || r.out.compare(r.out.size() - 4, 4, ".dzi")))
        problems.push_back("--out must end in .dzi (the tiles go to NAME_files/)");
    if (r.dzi_tile < 16 || r.dzi_tile > 4096)
        problems.push_back("--tile-size must be in [16, 4096]");
    if (r.dzi_overlap < 0 || r.dzi_overlap > 16) problems.push_back("--overlap must be in [0, 16]");
    if (r.map_tile < 16 || r.map_tile > 4096)
        problems.push_back("--tile-size must be in [16, 4096]");
    if (r.tile_format != "png" && r.tile_format != "webp")
        problems.push_back("--tile-format must be png or webp");
    else if (r.tile_format == "webp" && r.format != "pmtiles")
        problems.push_back("--tile-format webp is for --format pmtiles only");
    else if (r.tile_format == "webp" && !webp_available())
        problems.push_back("this igan was built without libwebp: use --tile-format png, or apt "
                           "install libwebp-dev and rebuild");
    if (r.webp_quality != kWebpLossless && (r.webp_quality < 1 || r.webp_quality > 100))
        problems.push_back("--webp-quality must be lossless or in [1, 100]");
    if (r.tiff_tile < 16 || r.tiff_tile > 4096 || r.tiff_tile % 16)
        problems.push_back("--tiff-tile must be a multiple of 16 in [16, 4096]");
    if (r.compression != "none" && r.compression != "deflate" && r.compression != "lzw")
        problems.push_back("--compression must be none, deflate or lzw");
    else if (r.format == "cog" && r.compression == "lzw")
        problems.push_back("--compression must be none or deflate for a COG");
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
    return run_export(engine, engine.prepare(request.region, true), request, progress);
}

ExportResult run_export(const Engine& engine, const RenderJob& job, const ExportRequest& request,
                        const ProgressFn& progress) {
    validate_export_request(request);
    const GenerateRequest& planned = job.request();
    const GenerateRequest& g = request.region;
    if (planned.seed != g.seed || planned.x != g.x || planned.y != g.y ||
        planned.width != g.width || planned.height != g.height)
        throw Error("run_export: the job was prepared for another rectangle than the request's");
    const auto start = std::chrono::steady_clock::now();
    auto result = request.format == "dzi"       ? export_dzi(engine, job, request, progress)
                  : request.format == "pmtiles" ? export_pmtiles(engine, job, request, progress)
                  : request.format == "cog"     ? export_cog(engine, job, request, progress)
                                                : export_bigtiff(engine, job, request, progress);
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

}  // namespace igan
