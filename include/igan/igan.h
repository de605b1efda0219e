#pragma once
// igan public API: everything the CLI and the server use. No torch types cross this header, so
// programs that include only it compile quickly and the library can change its internals.
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace igan {

class Error : public std::runtime_error {
public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Errors in what the user asked for (exit code 2 in the CLI), as opposed to failures.
class UsageError : public Error {
public:
    explicit UsageError(const std::string& what) : Error(what) {}
};

struct Progress {
    int64_t done = 0, total = 0;
    double elapsed_s = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

// Library-wide runtime settings: LibTorch defaults to one thread here, so set it explicitly.
void set_threads(int threads);  // <= 0: all available cores
int default_threads();
std::string version_report();   // git describe, LibTorch version, CUDA, BLAS in use
std::string version_string();   // git describe only

std::vector<std::string> config_names();

struct InitRequest {
    std::string config = "tiny";  // preset name or JSON file
    uint64_t seed = 0;
    std::string out;
};
void init_model(const InitRequest& request);

struct ModelSummary {
    std::string path, sha256, config_name, config_json;
    int64_t parameters = 0;
    int64_t patch_size = 0;
    int64_t upscale = 0;        // output pixels per latent cell
    double gflop_per_patch = 0; // at the training patch size
    double gflop_per_tile = 0;  // for the default tile
    int64_t default_tile = 0;
    int64_t step = 0;
};

struct GenerateRequest {
    uint64_t seed = 0;
    int64_t x = 0, y = 0, width = 0, height = 0;
    int64_t tile = 0;          // 0: the model's default
    int64_t batch = 1;
    double psi = 1.0;          // truncation of the global style toward its mean
    int64_t cyclic_width = 0;  // > 0: a horizontally periodic canvas
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

// Model-independent checks of a request (sizes, caps, tile, batch); throws UsageError.
void validate_request(const GenerateRequest& request, bool force);
// Fails early (UsageError) when `path` cannot be written: missing or read-only directory.
void check_output_path(const std::string& path);

// A loaded generator: immutable weights shared by any number of concurrent requests.
class Engine {
public:
    // config_override: preset name or JSON file, for weight files without igan metadata.
    explicit Engine(const std::string& model_path, const std::string& device = "cpu",
                    const std::string& config_override = "");
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    const ModelSummary& summary() const;
    // Checks a request without running it; throws UsageError naming the problem.
    void validate(const GenerateRequest& request, bool force) const;
    GenerateResult generate(const GenerateRequest& request, const ProgressFn& progress = {}) const;
    // 8-bit RGB rows of a rectangle, in memory (for small regions, servers and tests).
    std::vector<uint8_t> render_rgb(const GenerateRequest& request) const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// Runs the networks on explicit inputs named as in the golden reference set and writes every
// output named as there. discriminator_path may be empty (then D outputs are skipped).
struct ForwardRequest {
    std::string model, inputs, out, discriminator, config_override, device = "cpu";
};
std::vector<std::string> run_forward(const ForwardRequest& request);  // names written

struct BenchRequest {
    std::string config = "tiny";
    int threads = 0;
    int64_t tile = 0, batch = 1;
    int repetitions = 3;
    bool measure_rss = true;
    std::string self_exe;  // path of the igan binary, to measure RSS in child processes
};
std::string run_bench(const BenchRequest& request);  // one JSON object
// The child side of the RSS measurement: renders a size x size canvas with a random tiny model,
// discarding rows, and prints peak RSS in MB.
double measure_render_rss(const std::string& config, int64_t width, int64_t height, int64_t tile,
                          int threads);

}  // namespace igan
