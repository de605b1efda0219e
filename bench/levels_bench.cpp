// Zoomed-out levels: how faithful and how costly each way to render level z < 0 is, against the
// reference the tile server used to serve (the native render box-filtered 2^-z times). A way
// "partial p" renders level p >= z from the texture synthesizer's partial ToRGB sum
// (GenerateRequest::level) and box-filters it 2^(p - z) times more; "box 0" is the reference.
// For each sample (a seed and a region around the horizon) one native region of side
// size * 2^-zmin is rendered and every level derived from it. Reports, per level and way, the
// mean PSNR (8-bit) and the SWD (x 1e3, Laplacian-pyramid patches) of the way's images against
// the reference's, the mean PSNR after the best affine colour map of each image onto the
// reference (the part of the error that is not colour), and the cold cost of one tile of
// `tile` px in seconds, from timed renders of one tile at each directly rendered level (a way
// costs 4^(p - z) tiles of level p). A way
// "head p" renders level p through the fitted coarse head in the model's side file (igan
// fit-coarse); "student p" through its coarse student (igan fit-coarse --student). Fit both on
// other seeds than these (1..samples) to measure on held-out ones.
//   build/igan_levels_bench models/landscape-tiny.safetensors --size 64 --samples 8 --threads 2
// docs/serving.md, "Zoomed-out levels", holds the table and the choice the server makes from it.
#include <igan/igan.h>
#include <igan/image.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "eval/swd.h"

namespace {

using Image = std::vector<uint8_t>;  // side x side RGB

// Each output pixel the rounded mean of its factor x factor block.
Image box_filter(const Image& in, int64_t side, int64_t factor) {
    const auto t = torch::from_blob(const_cast<uint8_t*>(in.data()), {side, side, 3}, torch::kUInt8)
                       .permute({2, 0, 1})
                       .unsqueeze(0)
                       .to(torch::kFloat32);
    const auto out = torch::avg_pool2d(t, factor).round().to(torch::kUInt8)[0].permute({1, 2, 0})
                         .contiguous();
    return Image(out.data_ptr<uint8_t>(), out.data_ptr<uint8_t>() + out.numel());
}

double psnr(const Image& a, const Image& b) {
    double se = 0;
    for (size_t i = 0; i < a.size(); ++i) se += double(int(a[i]) - int(b[i])) * (a[i] - b[i]);
    const double mse = se / double(a.size());
    return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

torch::Tensor to_tensor(const Image& img, int64_t side) {
    return torch::from_blob(const_cast<uint8_t*>(img.data()), {side, side, 3}, torch::kUInt8)
        .permute({2, 0, 1})
        .to(torch::kFloat32)
        .contiguous();
}

double seconds_of(const std::function<void()>& fn) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// PSNR after the best affine colour map of `img` onto `ref` (least squares, 3 x 4): what a way
// would score if only its colours were wrong, so the gap to psnr() is its colour error.
double psnr_colour_fitted(const Image& img, const Image& ref) {
    const int64_t n = int64_t(img.size() / 3);
    auto as_rows = [n](const Image& v) {
        return torch::from_blob(const_cast<uint8_t*>(v.data()), {n, 3}, torch::kUInt8)
            .to(torch::kFloat64);
    };
    const auto x = torch::cat({as_rows(img), torch::ones({n, 1}, torch::kFloat64)}, 1);
    const auto y = as_rows(ref);
    const auto a = std::get<0>(torch::linalg_lstsq(x, y));
    const auto mse = (x.mm(a).round().clamp(0, 255) - y).pow(2).mean().item<double>();
    return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

struct Way {
    std::vector<double> psnr, psnr_colour_fitted;
    std::unique_ptr<igan::SwdDescriptors> desc;
};

int usage() {
    std::fprintf(stderr,
                 "usage: igan_levels_bench MODEL [--size PX] [--samples N] [--min-level Z] "
                 "[--tile PX] [--threads N] [--rounds N] [--dump DIR] [--student-colours 0|1]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string model = argv[1];
    int64_t size = 64, samples = 8, tile = 256;
    int min_level = -4, threads = 0;
    int64_t rounds = 5;
    std::string dump;  // the first sample's images, level_Z_from_P.png
    bool student_colours = true;  // GenerateRequest::student_colours
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const long long v = std::atoll(argv[i + 1]);
        if (k == "--size") size = v;
        else if (k == "--samples") samples = v;
        else if (k == "--min-level") min_level = int(v);
        else if (k == "--tile") tile = v;
        else if (k == "--threads") threads = int(v);
        else if (k == "--rounds") rounds = v;
        else if (k == "--dump") dump = argv[i + 1];
        else if (k == "--student-colours") student_colours = v != 0;
        else return usage();
    }
    if (size < 16 || samples < 1 || rounds < 1 || min_level > -1 || min_level < -8 || tile < 16)
        return usage();
    igan::set_threads(threads);
    igan::Engine engine(model);
    const auto partial = engine.summary().partial_levels;
    const int64_t native_side = size << -min_level;
    std::printf("model %s, partial levels:", model.c_str());
    for (int p : partial) std::printf(" %d", p);
    std::printf("; %lld samples of %lld px at level %d (native %lld px)\n", (long long)samples,
                (long long)size, min_level, (long long)native_side);

    // Levels with a fitted coarse head or a coarse student (the model's side file, igan
    // fit-coarse), as p - kHead and p - kStudent in the maps below.
    constexpr int kHead = 10, kStudent = 20;
    std::vector<int> heads, students;
    for (const auto& h : engine.summary().coarse_heads) heads.push_back(h.level);
    for (const auto& h : engine.summary().coarse_students) students.push_back(h.level);
    // A way's key: its level and how it is made (0 partial or box, 1 head, 2 student).
    auto kind_of = [&](int key) {
        return key < -kStudent / 2 - kHead ? 2 : key < -kHead / 2 ? 1 : 0;
    };
    auto level_of = [&](int key) {
        return key + (kind_of(key) == 2 ? kStudent : kind_of(key) == 1 ? kHead : 0);
    };
    auto name_of = [&](int key) {
        const char* kinds[] = {"partial ", "head ", "student "};
        return key == 0 ? std::string("box 0")
                        : kinds[kind_of(key)] + std::to_string(level_of(key));
    };
    // ways[z][p]: level z from level p (p = 0: the reference).
    std::map<int, std::map<int, Way>> ways;
    const igan::SwdConfig swd_config;
    for (int z = -1; z >= min_level; --z) {
        const int64_t side = size << (z - min_level);
        for (int p = 0; p >= z; --p) {
            if (p == 0 || std::count(partial.begin(), partial.end(), p))
                ways[z][p].desc = std::make_unique<igan::SwdDescriptors>(swd_config, side, side);
            if (std::count(heads.begin(), heads.end(), p))
                ways[z][p - kHead].desc =
                    std::make_unique<igan::SwdDescriptors>(swd_config, side, side);
            if (std::count(students.begin(), students.end(), p))
                ways[z][p - kStudent].desc =
                    std::make_unique<igan::SwdDescriptors>(swd_config, side, side);
        }
    }
    std::map<int, std::vector<double>> shifted;  // per level: PSNR of the half-pixel shift
    std::vector<int> heads_and_students;
    for (int p : heads) heads_and_students.push_back(p - kHead);
    for (int p : students) heads_and_students.push_back(p - kStudent);
    for (int64_t s = 0; s < samples; ++s) {
        igan::GenerateRequest r;
        r.seed = uint64_t(s + 1);
        r.x = s * 7919 * 8 - native_side / 2;  // apart, on the latent grid
        r.y = -native_side / 2;                // centred on the horizon row y = 0
        r.width = r.height = native_side;
        const auto native = engine.render_rgb(r);
        std::map<int, Image> rendered{{0, native}};
        for (int p : partial) {
            if (p < min_level) continue;
            igan::GenerateRequest q = r;
            q.level = p;
            q.x = r.x >> -p;
            q.y = r.y >> -p;
            q.width = q.height = native_side >> -p;
            rendered[p] = engine.render_rgb(q);
        }
        for (int key : heads_and_students) {
            const int p = level_of(key);
            if (p < min_level) continue;
            igan::GenerateRequest q = r;
            q.level = p;
            q.coarse_head = kind_of(key) == 1;
            q.coarse_student = kind_of(key) == 2;
            q.student_colours = student_colours;
            q.x = r.x >> -p;
            q.y = r.y >> -p;
            q.width = q.height = native_side >> -p;
            rendered[key] = engine.render_rgb(q);
        }
        const auto native_t = to_tensor(native, native_side);
        for (auto& [z, by_source] : ways) {
            const int64_t side = size << (z - min_level);
            const Image ref = box_filter(native, native_side, native_side / side);
            // The box filter against itself half a level pixel away, a displacement no viewer
            // sees at that scale: a yardstick for "faithful" (docs/serving.md).
            const int64_t f = native_side / side, n = native_side - f;
            auto boxed = [&](int64_t at) {
                const auto t = native_t.narrow(1, at, n).narrow(2, at, n).unsqueeze(0);
                return torch::avg_pool2d(t, f).round();
            };
            const double mse = (boxed(0) - boxed(f / 2)).pow(2).mean().item<double>();
            shifted[z].push_back(mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse));
            for (auto& [p, way] : by_source) {
                const int64_t p_side = native_side >> -level_of(p);
                const Image img = p == 0 ? ref : box_filter(rendered[p], p_side, p_side / side);
                way.psnr.push_back(psnr(img, ref));
                way.psnr_colour_fitted.push_back(psnr_colour_fitted(img, ref));
                way.desc->add(to_tensor(img, side));
                if (s == 0 && !dump.empty()) {
                    const auto png = igan::encode_png(img.data(), side, side);
                    const char* kinds[] = {"", "head", "student"};
                    const auto path = dump + "/level_" + std::to_string(z) + "_from_" +
                                      kinds[kind_of(p)] + std::to_string(level_of(p)) + ".png";
                    std::FILE* f = std::fopen(path.c_str(), "wb");
                    if (f) std::fwrite(png.data(), 1, png.size(), f), std::fclose(f);
                }
            }
        }
        std::fprintf(stderr, "sample %lld done\n", (long long)s + 1);
    }

    // One cold tile at each directly rendered level (warmed up once).
    std::map<int, double> tile_s;
    std::vector<int> direct{0};
    for (int p : partial) direct.push_back(p);
    for (int key : heads_and_students) direct.push_back(key);
    // Alternating: each round times one cold tile (a fresh place) at every level in turn, so
    // load from other jobs hits all levels alike; the median over rounds, and the median of
    // each round's ratio to its z = 0 tile.
    auto request_for = [&](int p, int64_t round) {
        igan::GenerateRequest q;
        q.seed = 99;
        q.level = level_of(p);
        q.coarse_head = kind_of(p) == 1;
        q.coarse_student = kind_of(p) == 2;
        q.student_colours = student_colours;
        q.width = q.height = tile;
        q.x = (round + 1) * 4 * tile;
        return q;
    };
    for (int p : direct) engine.render_rgb(request_for(p, -1));  // warm-up
    std::map<int, std::vector<double>> times, ratios;
    for (int64_t round = 0; round < rounds; ++round) {
        double native = 0;
        for (int p : direct) {
            const auto q = request_for(p, round);
            const double t = seconds_of([&] { engine.render_rgb(q); });
            if (p == 0) native = t;
            times[p].push_back(t);
            ratios[p].push_back(t / native);
        }
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (int p : direct) tile_s[p] = median(times[p]);
    std::printf("\nlevel  way         PSNR dB (min)    colour-fitted  SWD x1e3   tile s  (tiles of "
                "level p)\n");
    for (auto& [z, by_source] : ways) {
        const auto& ref = *by_source.at(0).desc;
        for (auto& [p, way] : by_source) {
            double mean = 0, lo = 1e9, fitted = 0;
            for (double v : way.psnr) mean += v / double(way.psnr.size()), lo = std::min(lo, v);
            for (double v : way.psnr_colour_fitted) fitted += v / double(way.psnr.size());
            const double swd = p == 0 ? 0.0 : igan::swd(*way.desc, ref).mean;
            const double tiles = std::pow(4.0, level_of(p) - z);
            std::printf("%5d  %-10s  %6.2f (%6.2f)  %13.2f  %9.2f  %7.3f  (%g)\n", z,
                        name_of(p).c_str(), p == 0 ? 99.0 : mean, p == 0 ? 99.0 : lo,
                        p == 0 ? 99.0 : fitted, swd, tiles * tile_s[p], tiles);
        }
    }
    std::printf("\nbox filter against itself shifted by half a level pixel, PSNR dB mean (min):");
    for (auto& [z, v] : shifted) {
        double mean = 0;
        for (double x : v) mean += x / double(v.size());
        std::printf(" %d: %.2f (%.2f)", z, mean, *std::min_element(v.begin(), v.end()));
    }
    std::printf("\n");
    std::printf("\ncold tile seconds at directly rendered levels, median of %lld alternating "
                "rounds (x: median ratio to the same round's z = 0 tile):",
                (long long)rounds);
    for (auto& [p, t] : tile_s)
        std::printf(" %s: %.3f (x%.2f)", p == 0 ? "0" : name_of(p).c_str(), t, median(ratios[p]));
    std::printf("\n");
    if (student_colours && !students.empty()) {
        // A seed's first student tile also renders its colour probes: once per seed and level.
        std::printf("colour probes, seconds per seed (x: a z = 0 tile):");
        for (int p : students) {
            auto q = request_for(p - kStudent, 0);
            q.seed = 1u << 30;  // a seed no render above used
            const double first = seconds_of([&] { engine.render_rgb(q); });
            const double again = seconds_of([&] { engine.render_rgb(q); });
            std::printf(" %d: %.3f (x%.2f)", p, first - again, (first - again) / tile_s[0]);
        }
        std::printf("\n");
    }
    return 0;
}
