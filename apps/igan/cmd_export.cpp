// `igan export`: a rectangle of the canvas as a DeepZoom pyramid (OpenSeadragon), a PMTiles
// archive, a cloud-optimized GeoTIFF or a tiled BigTIFF, streamed in constant memory with
// respect to its height.
#include <igan/export.h>

#include <cstdio>
#include <iostream>
#include <optional>

#include "commands.h"
#include "progress.h"

namespace igan::cli {
namespace {

struct ExportArgs {
    igan::ExportRequest req;
    std::string model, device = "cpu", config, precision = "fp32";
    int64_t width = 2048, height = 1024;
    std::optional<int64_t> y, tile_size;
    bool force = false, quiet = false, json = false;
};

int run_export(ExportArgs& a) {
    auto& g = a.req.region;
    g.width = a.width;
    g.height = a.height;
    g.y = a.y ? *a.y : -(a.height / 2);
    if (a.tile_size) (a.req.format == "pmtiles" ? a.req.map_tile : a.req.dzi_tile) = *a.tile_size;
    const auto checked = igan::validate_request(g, a.force);
    igan::validate_export_request(a.req);
    igan::check_output_path(a.req.out);
    const igan::Engine engine(a.model, a.device, a.config, a.precision);
    const auto job = engine.prepare(checked);
    ProgressBar bar(a.req.format, a.quiet, g.width * g.height);
    const auto res =
        igan::run_export(engine, job, a.req, [&](const igan::Progress& p) { bar.update(p); });
    bar.finish();
    if (a.json) {
        std::printf(
            "{\"path\":\"%s\",\"format\":\"%s\",\"files\":%lld,\"levels\":%lld,\"tiles\":%lld,"
            "\"unique_tiles\":%lld,\"bytes\":%llu,\"seconds\":%.3f}\n",
            res.path.c_str(), a.req.format.c_str(), (long long)res.files, (long long)res.levels,
            (long long)res.tiles, (long long)res.unique_tiles, (unsigned long long)res.bytes,
            res.seconds);
    } else {
        std::cout << res.path << "\n";
    }
    if (!a.quiet && res.tiles > 0)
        std::fprintf(
            stderr,
            "wrote %s (%lldx%lld, %s, %lld levels, %lld tiles, %lld distinct, %.1f MB, %.2fs)\n",
            res.path.c_str(), (long long)g.width, (long long)g.height, a.req.format.c_str(),
            (long long)res.levels, (long long)res.tiles, (long long)res.unique_tiles,
            double(res.bytes) / 1e6, res.seconds);
    else if (!a.quiet)
        std::fprintf(stderr, "wrote %s (%lldx%lld, %s, %lld files, %.2fs)\n", res.path.c_str(),
                     (long long)g.width, (long long)g.height, a.req.format.c_str(),
                     (long long)res.files, res.seconds);
    return 0;
}

RegisterCommand reg(25, [](CLI::App& app, Globals&) {
    auto a = std::make_shared<ExportArgs>();
    auto& r = a->req;
    auto* cmd = app.add_subcommand(
        "export",
        "write a rectangle as a DeepZoom pyramid (.dzi), a PMTiles archive (.pmtiles), a "
        "cloud-optimized GeoTIFF or a tiled BigTIFF (.tif)");
    cmd->add_option("-m,--model", a->model, "model weights (.safetensors)")->required();
    cmd->add_option("--format", r.format, "dzi, pmtiles, cog or bigtiff")->capture_default_str();
    cmd->add_option("-o,--out", r.out, "NAME.dzi (tiles in NAME_files/), NAME.pmtiles or NAME.tif")
        ->required();
    cmd->add_option("-s,--seed", r.region.seed, "seed")->capture_default_str();
    cmd->add_option("--width", a->width, "width in pixels")->capture_default_str();
    cmd->add_option("--height", a->height, "height in pixels")->capture_default_str();
    cmd->add_option("--x", r.region.x, "left edge on the canvas")->capture_default_str();
    cmd->add_option("--y", a->y, "top edge; default -height/2 (centred on the horizon)");
    cmd->add_option("--tile", r.region.tile, "render tile size (0 = model default)")
        ->capture_default_str();
    cmd->add_option("--batch", r.region.batch, "tiles per forward pass")->capture_default_str();
    cmd->add_option("--psi,--trunc", r.region.psi, "truncation psi")->capture_default_str();
    cmd->add_option("--device", a->device, "cpu or cuda")->capture_default_str();
    add_precision_option(cmd, &a->precision);
    cmd->add_option("--config", a->config, "config for weight files without igan metadata");
    cmd->add_option("--tile-size", a->tile_size,
                    "tile side: DeepZoom (default 254) or PMTiles (default 256)");
    cmd->add_option("--tile-format", r.tile_format, "PMTiles tiles: png or webp")
        ->capture_default_str();
    add_webp_quality_option(cmd, &r.webp_quality,
                            "--tile-format webp: lossy quality 1..100, or lossless");
    cmd->add_option("--overlap", r.dzi_overlap, "DeepZoom tile overlap")->capture_default_str();
    cmd->add_option("--tiff-tile", r.tiff_tile, "TIFF tile side (multiple of 16): cog, bigtiff")
        ->capture_default_str();
    cmd->add_option("--compression", r.compression,
                    "TIFF compression: none, deflate, lzw (lzw: bigtiff only)")
        ->capture_default_str();
    cmd->add_flag("--force", a->force, "allow sizes beyond the safety cap");
    cmd->add_flag("-q,--quiet", a->quiet, "no progress output");
    cmd->add_flag("--json", a->json, "print the result as JSON on stdout");
    return std::make_pair(cmd, Runner([a] { return run_export(*a); }));
});

}  // namespace
}  // namespace igan::cli
