#pragma once
// igan export: a rectangle of the canvas for other viewers, in constant memory with respect to
// its height (one strip of tiles plus one row band per pyramid level): a DeepZoom pyramid
// (OpenSeadragon's .dzi + _files/) or a tiled BigTIFF.
#include <cstdint>
#include <string>

#include "igan/igan.h"

namespace igan {

struct ExportRequest {
    GenerateRequest region;      // seed, rectangle, psi, tile, batch (its `out` is ignored)
    std::string format = "dzi";  // dzi or bigtiff
    std::string out;             // NAME.dzi (plus NAME_files/) or NAME.tif
    int64_t dzi_tile = 254;      // DeepZoom tile side without overlap
    int64_t dzi_overlap = 1;
    int64_t tiff_tile = 256;              // TIFF tile side (multiple of 16)
    std::string compression = "deflate";  // bigtiff: none, deflate or lzw
};

struct ExportResult {
    std::string path;
    int64_t files = 0;   // DeepZoom tiles written (1 for BigTIFF)
    int64_t levels = 0;  // DeepZoom levels
    double seconds = 0;
};

// Checks the request without rendering (UsageError); then renders through Engine::stream_rows.
// Outputs appear only when complete: a failed export leaves no .dzi and no partial .tif.
void validate_export_request(const ExportRequest& request);
ExportResult run_export(const Engine& engine, const ExportRequest& request,
                        const ProgressFn& progress = {});

}  // namespace igan
