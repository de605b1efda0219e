#pragma once
// igan export: a rectangle of the canvas for other viewers, in constant memory with respect to
// its height (one strip of tiles plus one row band per pyramid level): a DeepZoom pyramid
// (OpenSeadragon's .dzi + _files/), a PMTiles v3 archive (one file of XYZ map tiles for static
// hosting), a cloud-optimized GeoTIFF (tiled BigTIFF with internal overviews) or a plain tiled
// BigTIFF. Every pyramid level is the 2x2 box filter of the finer one.
#include <cstdint>
#include <string>

#include "igan/igan.h"
#include "igan/image.h"

namespace igan {

struct ExportRequest {
    GenerateRequest region;      // seed, rectangle, psi, tile, batch (its `out` is ignored)
    std::string format = "dzi";  // dzi, pmtiles, cog or bigtiff
    std::string out;             // NAME.dzi (plus NAME_files/), NAME.pmtiles or NAME.tif
    int64_t dzi_tile = 254;      // DeepZoom tile side without overlap
    int64_t dzi_overlap = 1;
    // PMTiles tile side. With s = side * 2^(maxzoom - z), tile z/x/y shows the rectangle's
    // pixels [x * s, (x + 1) * s) x [y * s, (y + 1) * s), box-filtered to side x side: the
    // rectangle's top-left corner is the origin, maxzoom (the native resolution) the least zoom
    // whose 2^z x 2^z tiles cover it, zoom 0 one tile.
    int64_t map_tile = 256;
    std::string tile_format = "png";  // pmtiles: png or webp
    int webp_quality = 80;            // webp tiles: 1..100 lossy, or kWebpLossless
    int64_t tiff_tile = 256;              // TIFF tile side (multiple of 16), cog and bigtiff
    std::string compression = "deflate";  // cog: none or deflate; bigtiff: also lzw
};

struct ExportResult {
    std::string path;
    int64_t files = 0;         // DeepZoom tiles written (1 for the single-file formats)
    int64_t levels = 0;        // pyramid levels (PMTiles zooms, COG full resolution plus overviews)
    int64_t tiles = 0;         // pmtiles, cog: tiles in the file, over all levels
    int64_t unique_tiles = 0;  // pmtiles: distinct tile contents stored
    uint64_t bytes = 0;        // pmtiles, cog: file size
    double seconds = 0;
};

// Checks the request without rendering (UsageError); then renders through Engine::stream_rows.
// Outputs appear only when complete: a failed export leaves no .dzi and no partial file.
void validate_export_request(const ExportRequest& request);
ExportResult run_export(const Engine& engine, const ExportRequest& request,
                        const ProgressFn& progress = {});
// The same for a job `engine` prepared from request.region (rendered as the job says).
ExportResult run_export(const Engine& engine, const RenderJob& job, const ExportRequest& request,
                        const ProgressFn& progress = {});

}  // namespace igan
