#pragma once
// igan public API: everything the CLI and the server use. No torch types cross this header, so
// programs that include only it compile quickly and the library can change its internals.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "igan/bench.h"
#include "igan/convert.h"
#include "igan/error.h"
#include "igan/eval.h"
#include "igan/forward.h"
#include "igan/image.h"
#include "igan/progress.h"
#include "igan/train.h"
#include "igan/version.h"

namespace igan {

// Library-wide runtime settings: LibTorch defaults to one thread here, so set it explicitly.
constexpr int kMaxThreads = 1024;
void set_threads(int threads);  // <= 0: all available cores
int default_threads();
// Unlinks the temporary file of every output being written (`OUT.tmp-<pid>-<hex>`), for a
// signal handler that then ends the process. Async-signal-safe.
void remove_temporary_outputs() noexcept;
std::string version_report();   // git describe, LibTorch version, CUDA, BLAS in use

std::vector<std::string> config_names();

struct InitRequest {
    std::string config = "tiny";  // preset name or JSON file
    uint64_t seed = 0;
    std::string out;
};
void init_model(const InitRequest& request);

// Fitted coarse heads (docs/serving.md, "Zoomed-out levels"): every level a head can serve
// (the partial ToRGB levels and z_S's) as a 1x1 linear map of the generator's features there,
// fitted by least squares to the box-filtered native render over `samples` regions of their
// own seeds, and measured on `held_out` regions of further seeds. Written to `out` (default:
// the model's side file, MODEL minus .safetensors plus .coarse.safetensors, which Engine loads).
struct FitCoarseRequest {
    std::string model, out, device = "cpu";
    int64_t samples = 48, held_out = 16;
    int64_t side = 32;  // region side in pixels at the coarsest level
    uint64_t seed = 1000;
    int64_t y_range = 1024;  // region centres within this many native pixels of the horizon
    double ridge = 1e-4;
    // Instead of the heads, distil coarse students (render/coarse_student.h): small networks
    // that render these levels from the canvas's fields without running the generator, fitted
    // by Adam on L1 to the box-filtered native render of `student_samples` regions (side
    // `student_side` at the finest of the levels, centres within student_y_range native pixels
    // of the horizon), within `student_seconds` (or student_steps per student) and measured on
    // `held_out` regions. The side file keeps what it holds for the same weights (heads or
    // students) beside what is fitted now.
    bool student = false;
    std::vector<int> student_levels = {-3, -4};
    int64_t student_samples = 4096, student_side = 32, student_y_range = 4096;
    double student_seconds = 1080;
    int64_t student_steps = 0;
    int student_channels = 32;  // each student's width and residual layers' dilations
    std::vector<int> student_dilations = {1, 2, 4, 2, 1};
};
struct FitCoarseLevel {
    int level = 0;
    std::string source;  // "to_rgb K", "z_s" or "student"
    double held_out_psnr = 0, held_out_min_psnr = 0;
    double partial_psnr = 0;  // the raw partial ToRGB sum on the same regions (0 for z_S)
    int64_t steps = 0;        // a student's Adam steps
    double first_loss = 0, last_loss = 0;  // a student's L1 over its first and last 50 steps
};
struct FitCoarseResult {
    std::string path;
    std::vector<FitCoarseLevel> levels;
    double seconds = 0;
};
FitCoarseResult fit_coarse(const FitCoarseRequest& request, const ProgressFn& progress = {});
// The side file Engine looks for next to a model.
std::string coarse_heads_path_for(const std::string& model_path);

struct ModelSummary {
    std::string path, sha256, config_name, config_json;
    int64_t parameters = 0;
    int64_t patch_size = 0;
    int64_t upscale = 0;        // output pixels per latent cell
    double gflop_per_patch = 0; // at the training patch size
    double gflop_per_tile = 0;  // for the default tile
    int64_t default_tile = 0;
    int64_t step = 0;
    // Zoom levels z < 0 that GenerateRequest::level renders directly, from a partial ToRGB sum
    // of the texture synthesizer (coarsest first; e.g. -2, -1 with three ToRGB layers).
    std::vector<int> partial_levels;
    // Fitted coarse heads loaded from the model's side file (coarse_heads_path): levels that
    // GenerateRequest::coarse_head renders, with the PSNR measured on held-out seeds at fit time.
    struct CoarseHeadLevel {
        int level = 0;
        double held_out_psnr = 0;
    };
    std::vector<CoarseHeadLevel> coarse_heads;
    // Coarse students from the same file: levels GenerateRequest::coarse_student renders.
    std::vector<CoarseHeadLevel> coarse_students;
    std::string coarse_heads_path;
    std::string coarse_heads_note;  // why a side file was found but not used (stale)
};

// Spatial style fusion: the style of `seed` rules the canvas pixels nearest (x, y).
struct StyleCentre {
    uint64_t seed = 0;
    double x = 0, y = 0;  // canvas pixels
};
// Style centres as text, one syntax for every front end (the CLI's --styles, the server's
// fuse=): "SEED:X:Y,SEED:X:Y,..." (the older "SEED@X,Y;SEED@X,Y;..." is still read), SEED an
// unsigned 64-bit decimal. Throws UsageError.
std::vector<StyleCentre> parse_style_centres(const std::string& text);
// The same syntax with X and Y plain decimal integers ('-' and digits, within int64), read
// exactly: a double holds integers exactly only to 2^53, the server's cache keys need them to
// 2^60.
struct IntegerStyleCentre {
    uint64_t seed = 0;
    int64_t x = 0, y = 0;
};
std::vector<IntegerStyleCentre> parse_integer_style_centres(const std::string& text);

struct GenerateRequest {
    uint64_t seed = 0;
    int64_t x = 0, y = 0, width = 0, height = 0;
    int64_t tile = 0;          // 0: the model's default
    int64_t batch = 1;
    int64_t workers = 0;       // forward passes run concurrently (0: one per CPU thread)
    double psi = 1.0;          // truncation of the global style toward its mean
    int64_t cyclic_width = 0;  // > 0: a horizontally periodic canvas
    // Beyond the rows the model was trained on, fade the local latent so that sky and ground
    // continue smoothly (false: the original's canvas, the edge rows' texture repeated).
    bool fade_beyond_band = true;
    std::vector<StyleCentre> styles;  // non-empty: style fusion (`seed` then only seeds z_l/noise)
    double style_band = 128;          // fusion transition width in pixels
    // 0: the canvas. z < 0 (one of ModelSummary::partial_levels): the canvas 2^-z times smaller,
    // from the texture synthesizer stopped early at the ToRGB of that scale; x, y, width,
    // height are then in that level's pixels (canvas pixels * 2^z), cyclic_width and fusion
    // centres still in canvas pixels.
    int level = 0;
    // With level < 0: render it through the fitted coarse head of that level
    // (ModelSummary::coarse_heads) instead of the raw partial ToRGB sum.
    bool coarse_head = false;
    // With level < 0: render it through the coarse student of that level
    // (ModelSummary::coarse_students), from the canvas's fields without the generator.
    bool coarse_student = false;
    // A coarse student's colours mapped per style onto the native render of probe regions of
    // that style's seed (render/coarse_student.h; a seed's first such render pays the probes).
    bool student_colours = true;
    std::string out;           // PNG path
};

struct GenerateResult {
    std::string path;
    std::string record_json;  // the generation parameters, also stored in the PNG
    double seconds = 0;
    int64_t tiles = 0;
};

// Hard limits that protect users from typos (e.g. 10^9 pixels wide); --force lifts them.
constexpr int64_t kMaxSideWithoutForce = 65536;
constexpr int64_t kMaxPixelsWithoutForce = int64_t(1) << 32;
constexpr int64_t kMaxTile = 4096;

// A request that passed validate_request, the checks that need no model (sizes, caps, tile,
// batch, fusion centres). Front ends check before they load a model, so a typo fails at once;
// Engine::prepare then adds the model's checks without repeating these.
class CheckedRequest {
public:
    const GenerateRequest& request() const { return request_; }

private:
    friend CheckedRequest validate_request(const GenerateRequest& request, bool force);
    explicit CheckedRequest(const GenerateRequest& request) : request_(request) {}
    GenerateRequest request_;
};

// Model-independent checks of a request; throws UsageError naming the problem.
CheckedRequest validate_request(const GenerateRequest& request, bool force);
// Fails early (UsageError) when `path` cannot be written: missing or read-only directory.
void check_output_path(const std::string& path);

// GAN inversion settings shared by outpaint and inbetween (docs/applications.md).
struct InversionOptions {
    int64_t steps = 300;
    double lr = 0.1;
    // Perceptual features: a discriminator (igan safetensors). Empty: the model's sidecar
    // `<model dir>/<model stem>/discriminator.safetensors` when it exists, else the pixel loss alone.
    std::string perceptual;
    // Weight of the MobileNetV2 perceptual distance (docs/features.md) between the prediction and
    // the known pixels; 0 = off. `features`: its weights ("" =
    // data-cache/features/mobilenetv2.safetensors).
    double feature_weight = 0;
    std::string features;
    int64_t save_every = 0;  // > 0: write the reconstruction every N steps beside the output
    // > 0: resize input photos to this height first (the model's scale: about its training
    // image size, e.g. 101 for tiny); 0 = use them as they are
    int64_t fit_height = 0;
};

// Outpainting: the input image sits at (input_x, input_y) of a canvas_width x canvas_height
// output; K samples continue it differently outside the known region.
struct OutpaintRequest {
    std::string input, mask, out;  // mask: optional, same size, white = known
    int64_t canvas_width = 0, canvas_height = 0, input_x = 0, input_y = 0;
    int64_t samples = 1;           // > 1: out becomes <stem>-<k>.png
    uint64_t seed = 0;             // sample k draws its new latents from seed + k
    int64_t tile = 0, batch = 1;
    bool blend = true;             // paste the known pixels back over the render
    InversionOptions inversion;
};

// Inbetweening: left and right images `gap` pixels apart, the gap filled by fusing their
// inverted styles (transition band `band`, 0 = the gap).
struct InbetweenRequest {
    std::string left, right, out;
    int64_t gap = 0;
    double band = 0;
    int64_t samples = 1;
    uint64_t seed = 0;
    int64_t tile = 0, batch = 1;
    bool blend = true;
    InversionOptions inversion;
};

struct ApplicationResult {
    std::vector<std::string> paths;
    std::vector<double> initial_rmse, final_rmse;  // per inverted image, [-1, 1] scale
    std::string perceptual;  // the perceptual weights used ("" = pixel loss only)
    double seconds = 0;
};

// A request checked against the model and made ready to render, by Engine::prepare: the request,
// its tile plan, its record and the generator set up with its styles. Every render path takes
// one (the request overloads below prepare one first), so a request is checked and planned once.
// A job may be rendered more than once, by the engine that prepared it.
class RenderJob {
public:
    const GenerateRequest& request() const;
    const std::string& record_json() const;  // the generation record its outputs carry
    int64_t tiles() const;                   // tiles of its plan

    struct Impl;

private:
    friend class Engine;
    explicit RenderJob(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<Impl> impl_;
};

// A loaded generator: immutable weights shared by any number of concurrent requests.
class Engine {
public:
    // config_override: preset name or JSON file, for weight files without igan metadata.
    // precision: of the network's convolutions in every render, fp32, tf32 (CUDA), bf16 or
    // fp16 (CUDA) (docs/gpu.md); UsageError where the device cannot run it. On CUDA it sets
    // LibTorch's process-wide TF32 switches (on for tf32 only).
    explicit Engine(const std::string& model_path, const std::string& device = "cpu",
                    const std::string& config_override = "",
                    const std::string& precision = "fp32");
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const ModelSummary& summary() const;
    // The one check of a request: the model's (level, coarse head, cyclic period) on top of
    // validate_request's; throws UsageError naming the problem. Then plans it.
    RenderJob prepare(const CheckedRequest& request) const;
    RenderJob prepare(const GenerateRequest& request, bool force) const;
    // The generation record of a request as JSON, as its outputs carry it (PNG, TIFF, archives).
    std::string record(const GenerateRequest& request) const;
    GenerateResult generate(const RenderJob& job, const ProgressFn& progress = {}) const;
    GenerateResult generate(const GenerateRequest& request, const ProgressFn& progress = {}) const;
    // 8-bit RGB rows of a rectangle, in memory (for small regions, servers and tests). The
    // request overload checks without --force's lifting of the size caps.
    std::vector<uint8_t> render_rgb(const RenderJob& job) const;
    std::vector<uint8_t> render_rgb(const GenerateRequest& request) const;
    // Outpainting by inversion and inbetweening; progress counts inversion steps, then tiles.
    // Bad requests (unreadable image, mask of another size, canvas not containing the input)
    // throw UsageError before any work.
    ApplicationResult outpaint(const OutpaintRequest& request, const ProgressFn& progress = {}) const;
    ApplicationResult inbetween(const InbetweenRequest& request,
                                const ProgressFn& progress = {}) const;
    // The rectangle as 8-bit RGB rows in constant memory (one strip of tiles at a time, whatever
    // the height): on_rows(rows, y0, count) gets rows [y0, y0 + count) of the rectangle, 3 * width
    // bytes each, valid during the call only. Calls come in order, one at a time, on a helper
    // thread, so the consumer (PNG or TIFF compression) overlaps the rendering of the next strip;
    // an exception from on_rows ends the render and is rethrown. `out` is ignored.
    using RowsFn = std::function<void(const uint8_t* rows, int64_t y0, int64_t count)>;
    void stream_rows(const RenderJob& job, const RowsFn& on_rows,
                     const ProgressFn& progress = {}) const;
    void stream_rows(const GenerateRequest& request, const RowsFn& on_rows,
                     const ProgressFn& progress = {}) const;
    // Parallel rendering across processes or machines: shard `index` of `count` renders the
    // contiguous tile rows [rows * index / count, rows * (index + 1) / count) of the request
    // into a part file at request.out; merge_parts turns the parts into the PNG that generate()
    // would have written, byte for byte.
    GenerateResult generate_shard(const RenderJob& job, int64_t index, int64_t count,
                                  const ProgressFn& progress = {}) const;
    GenerateResult generate_shard(const GenerateRequest& request, int64_t index, int64_t count,
                                  const ProgressFn& progress = {}) const;

    struct Impl;

private:
    RenderJob::Impl& own(const RenderJob& job) const;  // throws unless this engine prepared it
    std::unique_ptr<Impl> impl_;
};

struct MergeResult {
    std::string path;
    int64_t width = 0, height = 0, parts = 0;
    double seconds = 0;
};
// Assembles every part of one sharded render (any order) into the PNG at `out`, streaming rows
// (constant memory). Throws UsageError when parts are missing, repeated or from other renders.
MergeResult merge_parts(const std::vector<std::string>& parts, const std::string& out);

}  // namespace igan
