#include "render/coarse_student.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "core/error.h"
#include "model/coords.h"
#include "render/coarse_head.h"
#include "render/renderer.h"
#include "render/styled_generator.h"

namespace igan {

int CoarseStudentConfig::margin() const {
    int m = 0;
    for (int d : dilations) m += d;
    return m;
}

std::vector<std::string> CoarseStudentConfig::validate() const {
    std::vector<std::string> p;
    if (level >= 0) p.push_back("level must be < 0");
    if (cells < 1) p.push_back("cells must be >= 1");
    if (channels < 1) p.push_back("channels must be >= 1");
    for (int d : dilations)
        if (d < 1) p.push_back("dilations must be >= 1");
    if (latent_dim < 1 || style_dim < 1) p.push_back("latent_dim and style_dim must be >= 1");
    if (latent_channels < 1 || latent_channels > latent_dim)
        p.push_back("latent_channels must be in [1, latent_dim]");
    return p;
}

CoarseStudentConfig CoarseStudentConfig::for_level(const GeneratorConfig& model, int level) {
    const int64_t up = ts_upscale(model), px = int64_t{1} << -level;  // native px per level px
    if (level >= 0 || px % up != 0)
        throw Error("a coarse student needs a level whose pixel is whole latent cells (" +
                    std::to_string(up) + " px): level " + std::to_string(level) + " is not");
    CoarseStudentConfig c;
    c.level = level;
    c.cells = int(px / up);
    c.shift = int(std::lround(CanvasGeometry(model, kStructureLevel).lag()));
    c.latent_dim = model.local_latent_dim;
    c.style_dim = model.global_latent_dim;
    c.latent_channels = std::max<int64_t>(1, model.local_latent_dim / c.cells);
    return c;
}

CoarseStudentNetImpl::CoarseStudentNetImpl(const CoarseStudentConfig& c) : config(c) {
    namespace nn = torch::nn;
    stem = register_module(
        "stem",
        nn::Conv2d(nn::Conv2dOptions(c.latent_channels, c.channels, c.cells).stride(c.cells)));
    stem_coords = register_module(
        "stem_coords",
        nn::Conv2d(nn::Conv2dOptions(3, c.channels, c.cells).stride(c.cells).bias(false)));
    for (int d : c.dilations)
        convs->push_back(nn::Conv2d(nn::Conv2dOptions(c.channels, c.channels, 3).dilation(d)));
    for (size_t k = 0; k <= c.dilations.size(); ++k) {
        nn::Linear film(c.style_dim, 2 * c.channels);
        // Zero: the style starts as no modulation and the fit learns what it carries.
        torch::NoGradGuard no_grad;
        film->weight.zero_();
        film->bias.zero_();
        films->push_back(film);
    }
    register_module("convs", convs);
    register_module("films", films);
    to_rgb = register_module("to_rgb", nn::Conv2d(nn::Conv2dOptions(c.channels, 3, 1)));
}

torch::Tensor CoarseStudentNetImpl::forward(const torch::Tensor& latent,
                                            const torch::Tensor& coords,
                                            const torch::Tensor& styles) {
    const int64_t c = config.channels, k = config.cells, edge = k * (2 * config.margin() + 1);
    TORCH_CHECK(
        latent.dim() == 4 && latent.size(1) == config.latent_channels && latent.size(2) >= edge &&
            latent.size(3) >= edge && latent.size(2) % k == 0 && latent.size(3) % k == 0 &&
            coords.sizes() == at::IntArrayRef({latent.size(0), 3, latent.size(2), latent.size(3)}),
        "coarse student: latent (B, ", config.latent_channels, ", ", k,
        "(h + 2m), ...) and coords (B, 3, ...) expected, got ", latent.sizes(), " and ",
        coords.sizes());
    // One style and no gradient (serving): the modulation is folded into the convolutions'
    // weights and bias, which saves two passes over every activation.
    const bool fold = styles.size(0) == 1 && !torch::GradMode::is_enabled();
    // leaky_relu((sum of the convs of their inputs) * gamma + beta), gamma = 1 + film.
    using Part = std::pair<torch::nn::Conv2dImpl*, torch::Tensor>;
    const auto styled = [&](size_t layer, const std::vector<Part>& parts) {
        const auto gb = films[layer]->as<torch::nn::Linear>()->forward(styles);  // (B, 2c)
        const auto gamma = 1 + gb.narrow(1, 0, c), beta = gb.narrow(1, c, c);
        torch::Tensor y;
        for (size_t i = 0; i < parts.size(); ++i) {
            auto* conv = parts[i].first;
            const auto& o = conv->options;
            torch::Tensor t;
            if (fold) {
                torch::Tensor bias;
                if (i == 0) bias = conv->bias * gamma[0] + beta[0];  // the first part has one
                t = torch::conv2d(parts[i].second, conv->weight * gamma.view({c, 1, 1, 1}), bias,
                                  at::IntArrayRef(o.stride()), at::IntArrayRef({0, 0}),
                                  at::IntArrayRef(o.dilation()));
            } else {
                t = conv->forward(parts[i].second);
            }
            y = !y.defined() ? t : fold ? y.add_(t) : y + t;
        }
        if (fold) return torch::leaky_relu_(y, 0.2);
        return torch::leaky_relu(y * gamma.view({-1, c, 1, 1}) + beta.view({-1, c, 1, 1}), 0.2);
    };
    auto h = styled(0, {{stem.get(), latent}, {stem_coords.get(), coords}});
    for (size_t k = 0; k < config.dilations.size(); ++k) {
        const int64_t d = config.dilations[k];
        auto y = styled(k + 1, {{convs[k]->as<torch::nn::Conv2d>(), h}});
        const auto kept = h.narrow(2, d, h.size(2) - 2 * d).narrow(3, d, h.size(3) - 2 * d);
        h = fold ? y.add_(kept) : y + kept;
    }
    return to_rgb(h);
}

PatchBatch student_patch_batch(const CoarseStudentConfig& s, const GeneratorConfig& model,
                               const CanvasFields& fields,
                               const std::vector<std::pair<int64_t, int64_t>>& origins, int64_t h,
                               int64_t w, torch::Device device) {
    const int64_t m = s.margin(), p = s.cells, r = model.ss_margin();
    GeneratorConfig read = model;  // the first latent_channels of the same field
    read.local_latent_dim = int(s.latent_channels);
    if (fields.cyclic_period_px % (p * ts_upscale(model)) != 0)
        throw Error("a cyclic canvas at level " + std::to_string(s.level) +
                    " needs a period of whole level pixels (" +
                    std::to_string(p * ts_upscale(model)) + " px)");
    // make_patch_batch draws cells [o - r, o + n + r) per side: place it on the cells wanted.
    const int64_t rows = p * (h + 2 * m), cols = p * (w + 2 * m);
    std::vector<std::pair<int64_t, int64_t>> cells;
    for (const auto& [y, x] : origins)
        cells.emplace_back(p * (y - m) + s.shift + r, p * (x - m) + s.shift + r);
    // A tile of a few pixels needs fewer cells than make_patch_batch's margins: cut them off.
    auto b = make_patch_batch(read, fields, cells, std::max<int64_t>(1, rows - 2 * r),
                              std::max<int64_t>(1, cols - 2 * r), kStructureLevel, device);
    b.local_latent = b.local_latent.narrow(2, 0, rows).narrow(3, 0, cols);
    b.coords = b.coords.narrow(2, 0, rows).narrow(3, 0, cols);
    b.origins = origins;
    b.window_h = h;
    b.window_w = w;
    return b;
}

torch::Tensor fit_colour_map(const torch::Tensor& from, const torch::Tensor& to, double ridge) {
    TORCH_CHECK(from.dim() == 2 && from.size(0) == 3 && to.sizes() == from.sizes(),
                "fit_colour_map: (3, N) and (3, N) expected");
    const int64_t n = from.size(1);
    const auto x = torch::cat({from.to(torch::kFloat64), torch::ones({1, n}, torch::kFloat64)})
                       .t();                       // (N, 4)
    const auto y = to.to(torch::kFloat64).t();    // (N, 3)
    const auto eye = torch::eye(4, 3, torch::kFloat64);  // the identity map, no offset
    const double lambda = ridge * double(n);
    const auto a = torch::linalg_solve(x.t().mm(x) + lambda * torch::eye(4, torch::kFloat64),
                                       x.t().mm(y) + lambda * eye);  // (4, 3)
    return a.t().to(torch::kFloat32).contiguous();                      // (3, 4)
}

torch::Tensor apply_colour_map(const torch::Tensor& map, const torch::Tensor& rgb) {
    const auto m = map.to(rgb.device(), rgb.scalar_type());
    const auto a = m.narrow(1, 0, 3).view({3, 3, 1, 1}), b = m.select(1, 3);
    return torch::conv2d(rgb, a, b);
}

std::vector<Rect> colour_probes(const CoarseStudentConfig& s, const GeneratorConfig& model) {
    // 128 native pixels a side (about a native tile's work for the three), the same rows at
    // every level; the bands' probes 512 px from the horizon's (or two band heights), in the
    // rows the beyond-band fade has settled, on whole level pixels.
    const int64_t f = int64_t{1} << -s.level, side = std::max<int64_t>(4, 128 / f);
    const int64_t reach = (std::max<int64_t>(512, 2 * int64_t(model.full_size)) + f - 1) / f;
    std::vector<Rect> out;
    for (int64_t cy : {-reach, int64_t{0}, reach}) out.push_back({0, cy - side / 2, side, side});
    return out;
}

torch::Tensor student_colour_map(PatchModel& model,
                                 const std::shared_ptr<const CoarseStudent>& student,
                                 const CanvasFields& fields, int64_t tile) {
    torch::NoGradGuard no_grad;
    const int64_t f = int64_t{1} << -student->config.level;
    std::vector<torch::Tensor> from, to;
    for (const auto& r : colour_probes(student->config, model.config())) {
        RenderOptions native;
        native.tile = tile;
        native.fields = fields;
        const auto image =
            render_region(model, {r.x * f, r.y * f, r.w * f, r.h * f}, native);
        RenderOptions coarse = native;
        coarse.rgb_index = kStructureLevel;
        coarse.student = student;
        from.push_back(render_region(model, r, coarse).reshape({3, -1}));
        to.push_back(box_reference(image, f).reshape({3, -1}));
    }
    return fit_colour_map(torch::cat(from, 1), torch::cat(to, 1));
}

double student_train_step(CoarseStudentNet& net, torch::optim::Optimizer& optimizer,
                          const PatchBatch& inputs, const torch::Tensor& styles,
                          const torch::Tensor& target) {
    torch::AutoGradMode grad(true);
    optimizer.zero_grad();
    const auto loss =
        (net->forward(inputs.local_latent, inputs.coords, styles) - target).abs().mean();
    loss.backward();
    optimizer.step();
    return loss.item<double>();
}

namespace {

struct Sample {
    uint64_t seed = 0;
    Rect native;
    torch::Tensor style;  // (1, G)
    // Per student: the float box filter of the native render (fitting regions) or the server's
    // 8-bit one (held-out regions), (3, side, side). Only these are kept: a few thousand regions
    // fit in memory.
    std::vector<torch::Tensor> target;
};

}  // namespace

std::vector<CoarseStudent> fit_coarse_students(Generator g, torch::Device device,
                                               const std::vector<int>& levels,
                                               const StudentFitOptions& o,
                                               std::vector<StudentFitReport>* reports,
                                               const StudentProgressFn& progress) {
    if (levels.empty()) throw Error("coarse students: no level to fit");
    const int finest = *std::max_element(levels.begin(), levels.end());
    const int coarsest = *std::min_element(levels.begin(), levels.end());
    const int64_t native_side = o.side << -finest, align = int64_t{1} << -coarsest;
    if (o.samples < 1 || o.held_out < 0 || o.batch < 1 || o.crop < 1 || o.y_range < 0 ||
        !(o.seconds > 0) || !(o.lr > 0) || (native_side >> -coarsest) < 1)
        throw Error(
            "coarse students: samples >= 1, held_out >= 0, batch >= 1, crop >= 1, "
            "y_range >= 0, seconds > 0, lr > 0 and a side of a pixel or more at every "
            "level needed");
    const int64_t crop = std::min(o.crop, native_side >> -coarsest);
    const auto& mc = g->config;
    std::vector<CoarseStudentConfig> configs;
    for (int z : levels) {
        auto sc = CoarseStudentConfig::for_level(mc, z);
        sc.channels = o.channels;
        sc.dilations = o.dilations;
        const auto bad = sc.validate();
        if (!bad.empty()) throw Error("coarse student: " + bad.front());
        configs.push_back(sc);
    }

    // Teacher renders, once: regions from a fixed generator (the same on every machine), on
    // whole pixels of the coarsest level.
    std::mt19937_64 rng(o.seed);
    auto pick = [&](int64_t range) { return int64_t(rng() % uint64_t(2 * range + 1)) - range; };
    const int64_t total = o.samples + o.held_out;
    std::vector<Sample> samples;
    {
        torch::NoGradGuard no_grad;
        for (int64_t i = 0; i < total; ++i) {
            Sample s;
            s.seed = o.seed + uint64_t(i);
            const int64_t range = i % 2 == 0 ? o.y_range / 4 : o.y_range;
            const int64_t y_centre = pick(range / align) * align;
            s.native = {pick(int64_t{1} << 16) * align, y_centre - native_side / 2, native_side,
                        native_side};
            auto model = StyledGenerator::for_seed(g, device, s.seed);
            RenderOptions ro;
            ro.tile = o.tile;
            ro.fields.seed = s.seed;
            const auto image = render_region(*model, s.native, ro);
            for (const auto& sc : configs) {
                const int64_t f = int64_t{1} << -sc.level;
                s.target.push_back(i < o.samples ? torch::avg_pool2d(image.unsqueeze(0), f)[0]
                                                 : box_reference(image, f));
            }
            s.style = seed_latent_and_style(g, device, s.seed).second;
            samples.push_back(std::move(s));
            if (progress) progress(i + 1, total, "teacher renders");
        }
    }

    std::vector<CoarseStudent> out;
    if (reports) reports->clear();
    for (size_t k = 0; k < configs.size(); ++k) {
        const auto& sc = configs[k];
        const int64_t f = int64_t{1} << -sc.level, side = native_side / f;
        CoarseStudent student;
        student.config = sc;
        student.net = CoarseStudentNet(sc);
        student.net->to(device);
        torch::optim::Adam adam(student.net->parameters(), torch::optim::AdamOptions(o.lr));
        // An equal share of the budget per student.
        const double budget = o.seconds / double(configs.size());
        const auto start = std::chrono::steady_clock::now();
        auto elapsed = [&] {
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        };
        StudentFitReport rep;
        rep.level = sc.level;
        std::vector<double> losses;
        for (int64_t step = 0;; ++step) {
            const double done =
                std::max(o.steps > 0 ? double(step) / double(o.steps) : 0.0, elapsed() / budget);
            if (done >= 1) break;
            // Cosine decay to zero over the budget (time or steps, whichever ends first).
            static_cast<torch::optim::AdamOptions&>(adam.param_groups()[0].options())
                .lr(o.lr * 0.5 * (1 + std::cos(M_PI * done)));
            std::vector<torch::Tensor> lat, crd, st, tg;
            for (int64_t b = 0; b < o.batch; ++b) {
                const size_t i = size_t(rng() % uint64_t(o.samples));
                const auto& s = samples[i];
                const int64_t oy = int64_t(rng() % uint64_t(side - crop + 1));
                const int64_t ox = int64_t(rng() % uint64_t(side - crop + 1));
                CanvasFields fields;
                fields.seed = s.seed;
                const auto in = student_patch_batch(sc, mc, fields,
                                                    {{s.native.y / f + oy, s.native.x / f + ox}},
                                                    crop, crop, device);
                lat.push_back(in.local_latent);
                crd.push_back(in.coords);
                st.push_back(s.style);
                tg.push_back(s.target[k].narrow(1, oy, crop).narrow(2, ox, crop));
            }
            PatchBatch in;
            in.local_latent = torch::cat(lat);
            in.coords = torch::cat(crd);
            losses.push_back(student_train_step(student.net, adam, in, torch::cat(st),
                                                torch::stack(tg).to(device)));
            rep.steps = step + 1;
            if (progress && step % 10 == 0)
                progress(int64_t(done * 1000), 1000,
                         "student " + std::to_string(sc.level) + " L1 " +
                             std::to_string(losses.back()).substr(0, 6));
        }
        rep.seconds = elapsed();
        auto mean_of = [&](size_t from, size_t to) {
            double m = 0;
            for (size_t i = from; i < to; ++i) m += losses[i] / double(to - from);
            return to > from ? m : 0.0;
        };
        const size_t n = losses.size(), w = std::min<size_t>(50, n);
        rep.first_loss = mean_of(0, w);
        rep.last_loss = mean_of(n - w, n);
        student.net->eval();

        // Held-out regions through the serving path: tiles of the level, as the server renders.
        std::vector<double> psnr;
        auto shared = std::make_shared<CoarseStudent>(student);
        for (int64_t i = o.samples; i < total; ++i) {
            torch::NoGradGuard no_grad;
            const auto& s = samples[size_t(i)];
            auto model = StyledGenerator::for_seed(g, device, s.seed);
            RenderOptions ro;
            ro.tile = o.tile;
            ro.fields.seed = s.seed;
            model->set_student_colours({student_colour_map(*model, shared, ro.fields, o.tile)});
            ro.rgb_index = kStructureLevel;
            ro.student = shared;
            const Rect level{s.native.x / f, s.native.y / f, side, side};
            psnr.push_back(psnr_8bit(render_region(*model, level, ro), s.target[k]));
        }
        if (!psnr.empty()) {
            for (double v : psnr) rep.held_out_psnr += v / double(psnr.size());
            rep.held_out_min_psnr = *std::min_element(psnr.begin(), psnr.end());
        }
        student.held_out_psnr = rep.held_out_psnr;
        student.held_out_min_psnr = rep.held_out_min_psnr;
        out.push_back(student);
        if (reports) reports->push_back(rep);
    }
    return out;
}

}  // namespace igan
