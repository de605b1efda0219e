// Outpainting and inbetweening (docs/applications.md): invert known images at canvas positions,
// pin the inverted latents there, and render the whole canvas in one pass with fresh latents
// elsewhere.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "api/engine_impl.h"
#include "core/error.h"
#include "eval/images.h"
#include "features/mobilenet_v2.h"
#include "invert/inversion.h"
#include "io/png.h"

namespace igan {

namespace {

namespace fs = std::filesystem;

// A known image at a position of the output.
struct Known {
    Image image;
    std::vector<uint8_t> mask;  // width * height, 1 = known
    int64_t x = 0, y = 0;       // output pixels
};

Image read_input(const std::string& path, const char* what) {
    if (path.empty()) throw UsageError(std::string(what) + " image is required");
    if (!fs::is_regular_file(path))
        throw UsageError(std::string(what) + " image " + path + " does not exist");
    try {
        return read_image(path);
    } catch (const Error& e) {
        throw UsageError(std::string(what) + " image: " + e.what());
    }
}

// Antialiased bilinear resize of 8-bit RGB to `height` rows, keeping the aspect ratio.
Image resize_to_height(const Image& in, int64_t height) {
    if (height == in.height) return in;
    const int64_t width = std::max<int64_t>(1, (in.width * height + in.height / 2) / in.height);
    auto t = rgb8_to_tensor(in.pixels.data(), in.width, in.height).unsqueeze(0);
    t = torch::nn::functional::interpolate(
        t, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{height, width})
               .mode(torch::kBilinear)
               .align_corners(false)
               .antialias(true));
    Image out;
    out.width = width;
    out.height = height;
    out.channels = 3;
    out.pixels.resize(size_t(3 * width * height));
    quantize_into(t[0], out.pixels.data(), 3 * width, 0);
    return out;
}

// Inversion optimises a square window as wide as the image's longer side, with gradients:
// memory grows with its square (a 1x2000 strip costs as much as 2000x2000, over 10 GB with the
// tiny model), and slivers carry too little to invert.
constexpr int64_t kMaxInvertSide = 1024, kMinInvertSide = 8, kMaxInvertAspect = 16;

std::string size_of(const Image& image) {
    return std::to_string(image.width) + "x" + std::to_string(image.height);
}

void check_inversion_aspect(const Image& image, const std::string& path, const char* what) {
    const int64_t lo = std::min(image.width, image.height), hi = std::max(image.width, image.height);
    if (lo < kMinInvertSide || hi > kMaxInvertAspect * lo)
        throw UsageError(std::string(what) + " image " + path + " is " + size_of(image) +
                         ": inversion needs at least " + std::to_string(kMinInvertSide) +
                         " pixels a side and an aspect ratio of at most " +
                         std::to_string(kMaxInvertAspect) + ":1; crop it");
}

void check_inversion_size(const Image& image, const std::string& path, const char* what) {
    if (std::max(image.width, image.height) > kMaxInvertSide)
        throw UsageError(std::string(what) + " image " + path + " is " + size_of(image) +
                         ": inversion takes at most " + std::to_string(kMaxInvertSide) +
                         " pixels a side (memory grows with the square of the longer side); "
                         "shrink it, e.g. with --fit-height");
}

Known load_known(const std::string& path, const std::string& mask_path, const char* what,
                 int64_t fit_height) {
    Known k;
    k.image = read_input(path, what);
    check_inversion_aspect(k.image, path, what);  // before --fit-height multiplies a sliver
    if (fit_height > 0) {
        if (!mask_path.empty())
            throw UsageError("--fit-height cannot be combined with --mask: resize both yourself");
        k.image = resize_to_height(k.image, fit_height);
    }
    check_inversion_size(k.image, path, what);
    k.mask.assign(size_t(k.image.width * k.image.height), 1);
    if (!mask_path.empty()) {
        const Image m = read_input(mask_path, "mask");
        if (m.width != k.image.width || m.height != k.image.height)
            throw UsageError("mask " + mask_path + " is " + std::to_string(m.width) + "x" +
                             std::to_string(m.height) + " but the input is " +
                             std::to_string(k.image.width) + "x" +
                             std::to_string(k.image.height) + ": give a mask of the input's size");
        int64_t known = 0;
        for (size_t i = 0; i < k.mask.size(); ++i) {
            const int sum = m.pixels[3 * i] + m.pixels[3 * i + 1] + m.pixels[3 * i + 2];
            k.mask[i] = sum >= 3 * 128;
            known += k.mask[i];
        }
        if (known == 0) throw UsageError("mask " + mask_path + " marks no pixel as known (white)");
    }
    return k;
}

void check_inversion_options(const InversionOptions& o) {
    if (o.fit_height < 0 || o.fit_height > 4096) throw UsageError("--fit-height must be in [0, 4096]");
    if (o.steps < 1 || o.steps > 100000) throw UsageError("--steps must be in [1, 100000]");
    if (!(o.lr > 0 && o.lr <= 10)) throw UsageError("--lr must be in (0, 10]");
    if (o.save_every < 0) throw UsageError("--save-every must be >= 0");
    if (!o.perceptual.empty() && !fs::is_regular_file(o.perceptual))
        throw UsageError("--perceptual " + o.perceptual + " does not exist");
    if (!(o.feature_weight >= 0 && o.feature_weight <= 1e6))
        throw UsageError("--feature-loss must be in [0, 1e6]");
}

void check_samples(int64_t samples, int64_t tile, int64_t batch) {
    if (samples < 1 || samples > 1000) throw UsageError("--samples must be in [1, 1000]");
    if (tile < 0 || tile > kMaxTile) throw UsageError("--tile must be in [0, 4096]");
    if (batch < 1 || batch > 256) throw UsageError("--batch must be in [1, 256]");
}

void check_canvas(int64_t w, int64_t h) {
    if (w <= 0 || h <= 0 || w > kMaxSideWithoutForce || h > kMaxSideWithoutForce)
        throw UsageError("canvas " + std::to_string(w) + "x" + std::to_string(h) +
                         " must be positive and at most " + std::to_string(kMaxSideWithoutForce) +
                         " per side");
}

// "out.png" for one sample; "out-0.png", "out-1.png", ... for several.
std::vector<std::string> sample_paths(const std::string& out, int64_t samples) {
    if (out.empty()) throw UsageError("--out FILE.png is required");
    check_output_path(out);
    if (samples == 1) return {out};
    const fs::path p(out);
    std::vector<std::string> paths;
    for (int64_t k = 0; k < samples; ++k)
        paths.push_back((p.parent_path() / (p.stem().string() + "-" + std::to_string(k) +
                                             p.extension().string()))
                            .string());
    return paths;
}

std::string step_path(const std::string& out, const std::string& tag, int64_t step) {
    const fs::path p(out);
    char suffix[64];
    std::snprintf(suffix, sizeof suffix, "-%s-step%06lld", tag.c_str(), (long long)step);
    return (p.parent_path() / (p.stem().string() + suffix + ".png")).string();
}

void write_png(const std::string& path, const torch::Tensor& rgb) {
    const int64_t h = rgb.size(1), w = rgb.size(2);
    std::vector<uint8_t> rows(size_t(3 * w * h));
    quantize_into(rgb, rows.data(), 3 * w, 0);
    PngWriter png(path, w, h, {{"Software", "igan " + version_string()}});
    png.write_rows(rows.data(), h);
    png.finish();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

// The inversion and rendering steps shared by outpaint and inbetween.
struct ApplicationRunner {
    const Engine::Impl& engine;
    const InversionOptions& options;
    const ProgressFn& progress;
    std::string out;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    Discriminator perceptual{nullptr};
    std::string perceptual_path;
    MobileNetV2Features features{nullptr};

    ApplicationRunner(const Engine::Impl& e, const InversionOptions& o, const ProgressFn& p,
                      std::string out_path)
        : engine(e), options(o), progress(p), out(std::move(out_path)) {
        perceptual_path = options.perceptual;
        if (perceptual_path.empty()) {
            const fs::path model_path(engine.summary.path);
            const fs::path sidecar =
                model_path.parent_path() / model_path.stem() / "discriminator.safetensors";
            if (fs::is_regular_file(sidecar)) perceptual_path = sidecar.string();
        }
        if (!perceptual_path.empty()) {
            perceptual = load_discriminator(perceptual_path, engine.model.config);
            perceptual->to(engine.device);
            perceptual->eval();
            for (auto& p : perceptual->parameters()) p.set_requires_grad(false);
        }
        if (options.feature_weight > 0)
            features = load_mobilenet_v2(
                options.features.empty() ? kDefaultFeaturesPath : options.features, engine.device);
    }

    // The generation record stored in each output PNG: generate's, for the canvas rendered
    // with fields `seed`, plus the inversion's settings.
    nlohmann::json record(const std::string& application, uint64_t seed, const Rect& canvas) const {
        GenerateRequest r;
        r.seed = seed;
        r.x = canvas.x;
        r.y = canvas.y;
        r.width = canvas.w;
        r.height = canvas.h;
        auto j = engine.record_json(r);
        j.update({{"application", application},
                  {"steps", options.steps},
                  {"perceptual", perceptual_path},
                  {"feature_loss", options.feature_weight}});
        return j;
    }

    // Inverts a known image placed at canvas (x0 + k.x, y0 + k.y).
    Inversion invert_known(const Known& k, int64_t x0, int64_t y0, uint64_t seed,
                           const std::string& tag) {
        InversionTarget t;
        t.image = rgb8_to_tensor(k.image.pixels.data(), k.image.width, k.image.height);
        t.mask = torch::from_blob(const_cast<uint8_t*>(k.mask.data()),
                                  {1, k.image.height, k.image.width}, torch::kUInt8)
                     .to(torch::kFloat);
        t.x = x0 + k.x;
        t.y = y0 + k.y;
        InversionSettings s;
        s.steps = options.steps;
        s.lr = options.lr;
        s.seed = seed;
        s.perceptual = perceptual;
        s.features = features;
        s.feature_weight = options.feature_weight;
        Generator g = engine.model.generator;
        return invert(g, engine.device, t, s,
                      [&](int64_t step, int64_t steps, double loss, const torch::Tensor& pred) {
            if (progress) {
                char detail[96];
                std::snprintf(detail, sizeof detail, "invert %s, loss %.4f", tag.c_str(), loss);
                progress({step, steps, seconds_since(start), detail});
            }
            if (options.save_every > 0 && (step % options.save_every == 0 || step == steps))
                write_png(step_path(out, tag, step), pred.to(torch::kCPU));
        });
    }

    // Renders the canvas with `model` for fields `seed`, pasting the known pixels back.
    void render(StyledGenerator& model, const Rect& canvas, uint64_t seed,
                const std::vector<Known>& knowns, bool blend, int64_t tile, int64_t batch,
                const std::string& path, const std::string& record) {
        RenderOptions o;
        o.tile = tile > 0 ? tile : kDefaultTile;
        o.batch = batch;
        o.fields.seed = seed;
        o.precision = engine.precision;
        PngWriter png(path, canvas.w, canvas.h,
                      {{"igan", record}, {"Software", "igan " + version_string()}});
        const int64_t stride = 3 * canvas.w;
        render_rows(
            model, canvas, o,
            [&](uint8_t* rows, int64_t y0, int64_t count) {
                if (blend) {
                    for (const auto& k : knowns) {
                        for (int64_t r = std::max(y0, k.y);
                             r < std::min(y0 + count, k.y + k.image.height); ++r) {
                            for (int64_t c = 0; c < k.image.width; ++c) {
                                const size_t src = size_t((r - k.y) * k.image.width + c);
                                if (!k.mask[src]) continue;
                                std::copy_n(&k.image.pixels[3 * src], 3,
                                            rows + (r - y0) * stride + 3 * (k.x + c));
                            }
                        }
                    }
                }
                png.write_rows(rows, count);
            },
            [&](int64_t done, int64_t total) {
                if (progress) progress({done, total, seconds_since(start), "render " + path});
            });
        png.finish();
    }
};

ApplicationResult Engine::outpaint(const OutpaintRequest& r, const ProgressFn& progress) const {
    check_inversion_options(r.inversion);
    check_samples(r.samples, r.tile, r.batch);
    check_canvas(r.canvas_width, r.canvas_height);
    Known known = load_known(r.input, r.mask, "input", r.inversion.fit_height);
    known.x = r.input_x;
    known.y = r.input_y;
    if (r.input_x < 0 || r.input_y < 0 || r.input_x + known.image.width > r.canvas_width ||
        r.input_y + known.image.height > r.canvas_height)
        throw UsageError("canvas " + std::to_string(r.canvas_width) + "x" +
                         std::to_string(r.canvas_height) + "+" + std::to_string(r.input_x) + "+" +
                         std::to_string(r.input_y) + " does not contain the " +
                         std::to_string(known.image.width) + "x" +
                         std::to_string(known.image.height) +
                         " input: enlarge the canvas or move the input");
    const auto paths = sample_paths(r.out, r.samples);

    ApplicationRunner run(*impl_, r.inversion, progress, r.out);
    // The output is centred on the horizon, as `generate` places it.
    const Rect canvas{0, -(r.canvas_height / 2), r.canvas_width, r.canvas_height};
    auto inv = run.invert_known(known, canvas.x, canvas.y, r.seed, "input");
    ApplicationResult result;
    result.initial_rmse.push_back(inv.initial_rmse);
    result.final_rmse.push_back(inv.final_rmse);
    result.perceptual = run.perceptual_path;
    StyledGenerator model(impl_->model.generator, impl_->device, inv.z, inv.styles);
    model.pin(inv.pins);
    for (int64_t k = 0; k < r.samples; ++k) {
        auto rec = run.record("outpaint", r.seed + uint64_t(k), canvas);
        rec.update({{"input", r.input},
                    {"canvas", {r.canvas_width, r.canvas_height, r.input_x, r.input_y}}});
        run.render(model, canvas, r.seed + uint64_t(k), {known}, r.blend, r.tile, r.batch,
                   paths[k], rec.dump());
    }
    result.paths = paths;
    result.seconds = seconds_since(run.start);
    return result;
}

ApplicationResult Engine::inbetween(const InbetweenRequest& r, const ProgressFn& progress) const {
    check_inversion_options(r.inversion);
    check_samples(r.samples, r.tile, r.batch);
    if (r.gap < 0 || r.gap > kMaxSideWithoutForce) throw UsageError("--gap must be in [0, 65536]");
    if (r.band < 0 || r.band > 1e6) throw UsageError("--band must be in [0, 10^6]");
    Known left = load_known(r.left, "", "left", r.inversion.fit_height);
    Known right = load_known(r.right, "", "right", r.inversion.fit_height);
    const int64_t width = left.image.width + r.gap + right.image.width;
    const int64_t height = std::max(left.image.height, right.image.height);
    check_canvas(width, height);
    left.x = 0;
    left.y = (height - left.image.height) / 2;
    right.x = left.image.width + r.gap;
    right.y = (height - right.image.height) / 2;
    const auto paths = sample_paths(r.out, r.samples);

    ApplicationRunner run(*impl_, r.inversion, progress, r.out);
    const Rect canvas{0, -(height / 2), width, height};
    auto inv_left = run.invert_known(left, canvas.x, canvas.y, r.seed, "left");
    auto inv_right = run.invert_known(right, canvas.x, canvas.y, r.seed + 1, "right");
    ApplicationResult result;
    for (const auto* inv : {&inv_left, &inv_right}) {
        result.initial_rmse.push_back(inv->initial_rmse);
        result.final_rmse.push_back(inv->final_rmse);
    }
    result.perceptual = run.perceptual_path;
    StyledGenerator model(impl_->model.generator, impl_->device, inv_left.z, inv_left.styles);
    auto centre = [&](const Known& k) {
        return FusionCentre{double(canvas.x + k.x) + k.image.width / 2.0,
                            double(canvas.y + k.y) + k.image.height / 2.0};
    };
    model.fuse(torch::cat({inv_left.z, inv_right.z}), torch::cat({inv_left.styles, inv_right.styles}),
               {centre(left), centre(right)}, r.band > 0 ? r.band : std::max<double>(1, r.gap));
    model.pin(inv_left.pins);
    model.pin(inv_right.pins);
    for (int64_t k = 0; k < r.samples; ++k) {
        auto rec = run.record("inbetween", r.seed + uint64_t(k), canvas);
        rec.update({{"left", r.left}, {"right", r.right}, {"gap", r.gap}});
        run.render(model, canvas, r.seed + 2 + uint64_t(k), {left, right}, r.blend, r.tile,
                   r.batch, paths[k], rec.dump());
    }
    result.paths = paths;
    result.seconds = seconds_since(run.start);
    return result;
}

}  // namespace igan
