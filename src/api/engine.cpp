#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "weights/model_file.h"
#include "core/device.h"
#include "core/error.h"
#include "core/rng.h"
#include "render/coarse_student.h"
#include "io/atomic_file.h"
#include "io/png.h"
#include "model/coords.h"
#include "model/state.h"
#include "render/renderer.h"
#include "render/styled_generator.h"
#include "api/engine_impl.h"

namespace igan {

Engine::Engine(const std::string& model_path, const std::string& device,
               const std::string& config_override, const std::string& precision)
    : impl_(std::make_unique<Impl>()) {
    impl_->device = parse_device(device);
    impl_->precision = parse_precision(precision);
    check_precision(impl_->precision, impl_->device);
    if (impl_->device.is_cuda()) use_cuda_math(impl_->precision);
    impl_->model = load_generator(model_path, config_override);
    impl_->model.generator->to(impl_->device);
    auto& s = impl_->summary;
    const auto& c = impl_->model.config;
    s.path = model_path;
    s.sha256 = impl_->model.sha256;
    s.config_name = c.name;
    s.config_json = model_config_to_string(c);
    s.parameters = count_parameters(*impl_->model.generator);
    s.patch_size = c.generator.patch_size();
    s.upscale = ts_upscale(c.generator);
    s.gflop_per_patch = 2e-9 * generator_macs(c.generator, c.generator.ts_input_size);
    s.default_tile = kDefaultTile;
    s.gflop_per_tile =
        2e-9 * generator_macs(c.generator, CanvasGeometry(c.generator).window_for(kDefaultTile));
    s.step = impl_->model.step;
    const auto& g = c.generator;
    for (int k = 0; k + 1 < int(g.to_rgb_src_conv().size()); ++k)
        s.partial_levels.push_back(-int(std::log2(double(ts_upscale(g) /
                                                         CanvasGeometry(g, k).upscale()))));
    const auto heads = coarse_heads_path_for(model_path);
    if (std::filesystem::exists(heads)) {
        impl_->coarse = load_coarse_heads(heads, g, s.sha256);
        s.coarse_heads_note = impl_->coarse.note;
        if (s.coarse_heads_note.empty()) s.coarse_heads_path = heads;
        for (const auto& [level, psnr] : impl_->coarse.psnr) s.coarse_heads.push_back({level, psnr});
        for (const auto& [level, st] : impl_->coarse.students)
            s.coarse_students.push_back({level, st->held_out_psnr});
    }
}

Engine::~Engine() = default;

std::string Engine::record(const GenerateRequest& r) const { return impl_->record(r); }

const ModelSummary& Engine::summary() const { return impl_->summary; }

CheckedRequest validate_request(const GenerateRequest& r, bool force) {
    if (r.width <= 0 || r.height <= 0)
        throw UsageError("--width and --height must be positive, got " + std::to_string(r.width) +
                         "x" + std::to_string(r.height));
    if (!force && (r.width > kMaxSideWithoutForce || r.height > kMaxSideWithoutForce ||
                   double(r.width) * double(r.height) > double(kMaxPixelsWithoutForce)))
        throw UsageError("size " + std::to_string(r.width) + "x" + std::to_string(r.height) +
                         " exceeds the safety cap (" + std::to_string(kMaxSideWithoutForce) +
                         " per side, 2^32 pixels); add --force if you mean it");
    if (r.width > (int64_t(1) << 31) - 1 || r.height > (int64_t(1) << 31) - 1)
        throw UsageError("PNG cannot hold more than 2^31-1 pixels per side");
    if (r.tile < 0 || r.tile > kMaxTile)
        throw UsageError("--tile must be in [1, " + std::to_string(kMaxTile) + "] (0 = default)");
    if (r.batch < 1 || r.batch > 256) throw UsageError("--batch must be in [1, 256]");
    if (r.workers < 0 || r.workers > 256)
        throw UsageError("--workers must be in [0, 256] (0 = one per thread)");
    if (!(r.psi >= -4 && r.psi <= 4)) throw UsageError("--psi must be in [-4, 4]");
    const int64_t limit = int64_t(1) << 60;
    if (r.x < -limit || r.x > limit || r.y < -limit || r.y > limit)
        throw UsageError("--x/--y must be within +-2^60");
    if (!r.styles.empty()) {
        if (r.styles.size() > 64) throw UsageError("at most 64 fusion styles");
        if (!(r.style_band >= 1 && r.style_band <= 1e6))
            throw UsageError("--band must be in [1, 10^6] pixels");
        if (r.cyclic_width != 0)
            throw UsageError("style fusion and --cyclic-width cannot be combined");
        for (size_t i = 0; i < r.styles.size(); ++i) {
            const auto& a = r.styles[i];
            if (!(std::abs(a.x) <= double(limit) && std::abs(a.y) <= double(limit)))
                throw UsageError("style centres must lie within +-2^60");
            for (size_t j = 0; j < i; ++j)
                if (a.x == r.styles[j].x && a.y == r.styles[j].y)
                    throw UsageError("two styles share the centre " + std::to_string(a.x) + "," +
                                     std::to_string(a.y) + ": give each its own point");
        }
    }
    return CheckedRequest(r);
}

std::string gpano_xmp(int64_t width, int64_t height) {
    const std::string w = std::to_string(width), h = std::to_string(height);
    return "<?xpacket begin=\"\xEF\xBB\xBF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
           "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n"
           " <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n"
           "  <rdf:Description rdf:about=\"\" xmlns:GPano=\"http://ns.google.com/photos/1.0/panorama/\">\n"
           "   <GPano:ProjectionType>equirectangular</GPano:ProjectionType>\n"
           "   <GPano:UsePanoramaViewer>True</GPano:UsePanoramaViewer>\n"
           "   <GPano:FullPanoWidthPixels>" + w + "</GPano:FullPanoWidthPixels>\n"
           "   <GPano:FullPanoHeightPixels>" + h + "</GPano:FullPanoHeightPixels>\n"
           "   <GPano:CroppedAreaImageWidthPixels>" + w + "</GPano:CroppedAreaImageWidthPixels>\n"
           "   <GPano:CroppedAreaImageHeightPixels>" + h + "</GPano:CroppedAreaImageHeightPixels>\n"
           "   <GPano:CroppedAreaLeftPixels>0</GPano:CroppedAreaLeftPixels>\n"
           "   <GPano:CroppedAreaTopPixels>0</GPano:CroppedAreaTopPixels>\n"
           "  </rdf:Description>\n"
           " </rdf:RDF>\n"
           "</x:xmpmeta>\n"
           "<?xpacket end=\"w\"?>";
}

void check_output_path(const std::string& path) {
    try {
        check_writable_path(path);
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
}

void remove_temporary_outputs() noexcept { remove_pending_temp_files(); }

const GenerateRequest& RenderJob::request() const { return impl_->request; }
const std::string& RenderJob::record_json() const { return impl_->record; }
int64_t RenderJob::tiles() const { return impl_->plan.count(); }

RenderJob Engine::prepare(const GenerateRequest& r, bool force) const {
    return prepare(validate_request(r, force));
}

TilePlan Engine::Impl::checked_plan(const GenerateRequest& r, RenderOptions* o) const {
    const auto& levels = summary.partial_levels;
    if (r.coarse_head && r.coarse_student)
        throw UsageError("a level comes from a coarse head or a coarse student, not both");
    if (r.coarse_student) {
        if (!coarse.students.count(r.level))
            throw UsageError("level " + std::to_string(r.level) +
                             ": no coarse student for it (igan fit-coarse --student)" +
                             (coarse.note.empty() ? "" : "; " + coarse.note));
        const int64_t px = int64_t{1} << -r.level;  // native pixels per level pixel
        if (r.cyclic_width % px != 0)
            throw UsageError("a coarse student at level " + std::to_string(r.level) +
                             " needs a cyclic period of whole level pixels (a multiple of " +
                             std::to_string(px) + " px)");
    } else if (r.coarse_head) {
        if (!coarse.heads.count(r.level))
            throw UsageError("level " + std::to_string(r.level) +
                             ": no fitted coarse head for it (igan fit-coarse)" +
                             (coarse.note.empty() ? "" : "; " + coarse.note));
    } else if (r.level != 0 &&
               std::find(levels.begin(), levels.end(), r.level) == levels.end()) {
        std::string list = "0";
        for (int z : levels) list += ", " + std::to_string(z);
        throw UsageError("level " + std::to_string(r.level) + ": this model renders levels " +
                         list + " directly");
    }
    *o = options(r);
    try {  // the plan checks the cyclic period, the last check that needs the model
        return plan_tiles(model.config.generator, {r.x, r.y, r.width, r.height}, *o);
    } catch (const UsageError&) {
        throw;
    } catch (const Error& e) {
        throw UsageError(e.what());
    }
}

torch::Tensor Engine::Impl::student_colours(int level, uint64_t seed, double psi,
                                            bool fade) const {
    constexpr size_t kMaxColourMaps = 4096;
    const auto key = std::make_tuple(level, seed, psi, fade);
    {
        std::lock_guard<std::mutex> lock(colour_mutex);
        const auto it = colour_maps.find(key);
        if (it != colour_maps.end()) return it->second;
    }
    const auto [z, w] = seed_style(seed, psi);
    StyledGenerator single(model.generator, device, z, every_slot(w));
    CanvasFields fields;
    fields.seed = seed;
    fields.fade_beyond_band = fade;
    const auto map = student_colour_map(single, coarse.students.at(level), fields);
    std::lock_guard<std::mutex> lock(colour_mutex);
    if (colour_maps.size() >= kMaxColourMaps) colour_maps.clear();
    colour_maps.emplace(key, map);
    return map;
}

RenderJob Engine::prepare(const CheckedRequest& checked) const {
    const GenerateRequest& r = checked.request();
    auto job = std::make_shared<RenderJob::Impl>();
    job->engine = impl_.get();
    job->request = r;
    job->plan = impl_->checked_plan(r, &job->options);
    job->record = impl_->record(r);
    job->model = impl_->styled(r);
    if (r.coarse_student && r.student_colours) {
        std::vector<torch::Tensor> maps;
        if (r.styles.empty())
            maps.push_back(impl_->student_colours(r.level, r.seed, r.psi, r.fade_beyond_band));
        for (const auto& s : r.styles)
            maps.push_back(impl_->student_colours(r.level, s.seed, r.psi, r.fade_beyond_band));
        job->model->set_student_colours(std::move(maps));
    }
    return RenderJob(std::move(job));
}

// A job made by another engine would render with this one's weights but the other's plan.
RenderJob::Impl& Engine::own(const RenderJob& job) const {
    if (job.impl_->engine != impl_.get())
        throw Error("a render job is rendered by the engine that prepared it");
    return *job.impl_;
}

GenerateResult Engine::generate(const GenerateRequest& r, const ProgressFn& progress) const {
    return generate(prepare(r, true), progress);
}

GenerateResult Engine::generate(const RenderJob& job, const ProgressFn& progress) const {
    const auto& r = own(job).request;
    const auto start = std::chrono::steady_clock::now();
    GenerateResult result;
    result.path = r.out;
    result.record_json = job.record_json();
    result.tiles = job.tiles();
    PngWriter png(r.out, r.width, r.height, impl_->png_text(r, result.record_json));
    // stream_rows hands each strip over on a helper thread: PNG compression of one strip
    // overlaps the rendering of the next.
    stream_rows(
        job, [&png](const uint8_t* rows, int64_t, int64_t count) { png.write_rows(rows, count); },
        progress);
    png.finish();
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

void Engine::stream_rows(const GenerateRequest& r, const RowsFn& on_rows,
                         const ProgressFn& progress) const {
    stream_rows(prepare(r, true), on_rows, progress);
}

void Engine::stream_rows(const RenderJob& job, const RowsFn& on_rows,
                         const ProgressFn& progress) const {
    auto& j = own(job);
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    render_plan_rows(*j.model, j.plan, j.options, on_rows, [&](int64_t done, int64_t total) {
        if (progress) progress({done, total, elapsed(), ""});
    });
}

std::vector<uint8_t> Engine::render_rgb(const GenerateRequest& r) const {
    return render_rgb(prepare(r, false));
}

std::vector<uint8_t> Engine::render_rgb(const RenderJob& job) const {
    const auto& r = own(job).request;
    // Strip by strip into the 8-bit result: a float canvas (12 bytes a pixel, and as much again
    // in temporaries while quantizing) made a server's peak RSS grow with its largest /render.
    std::vector<uint8_t> out(size_t(3 * r.width * r.height));
    const size_t row_bytes = size_t(3 * r.width);
    stream_rows(job, [&](const uint8_t* rows, int64_t y0, int64_t count) {
        std::copy(rows, rows + row_bytes * size_t(count), out.begin() + row_bytes * size_t(y0));
    });
    return out;
}

}  // namespace igan
