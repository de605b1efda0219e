#pragma once
// Options shared by every command that renders the canvas (generate, fuse, outpaint, inbetween).
#include <optional>
#include <string>

#include "commands.h"

namespace igan::cli {

struct GenerateArgs {
    std::string model, out, outdir, seeds, device = "cpu", config, shard, precision = "fp32",
                beyond_band = "fade";
    int64_t seed = 0, x = 0, width = 512, height = 256, tile = 0, batch = 1, workers = 0,
            cyclic_width = 0;
    std::optional<int64_t> y;
    double psi = 1.0;
    bool quiet = false, json = false, force = false;
};

// --model, --seed, --width/--height, --x/--y, --tile, --batch, --workers, --psi (alias --trunc),
// --device, --precision, --beyond-band, --config, --force, --quiet, --json.
void add_common_render_options(CLI::App* cmd, GenerateArgs& a);
// The request for one seed and output path (y defaults to -height/2: centred on the horizon).
igan::GenerateRequest make_request(const GenerateArgs& a, uint64_t seed, const std::string& out);
// --seed -1 draws a random seed and prints it.
uint64_t resolve_seed(int64_t seed, bool quiet);
// Renders one prepared request with a progress bar and prints the path (or the record with
// --json).
void render_with_progress(const igan::Engine& engine, const igan::RenderJob& job,
                          const GenerateArgs& a, const std::string& label);

}  // namespace igan::cli
