// `igan generate`: render rectangles of the endless canvas to PNG.
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "progress.h"
#include "render_options.h"

namespace igan::cli {
namespace {

constexpr uint64_t kMaxSeeds = 100000;

// A seed: 1-20 decimal digits that fit uint64 (no sign, so "-5" is not a huge number).
bool parse_seed(const std::string& text, uint64_t* out) {
    if (text.empty() || text.size() > 20 ||
        text.find_first_not_of("0123456789") != std::string::npos)
        return false;
    const auto r = std::from_chars(text.data(), text.data() + text.size(), *out);
    return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

// "0-31,42" -> {0..31, 42}. Every range is checked before any is expanded, so the list never
// holds more than kMaxSeeds.
std::vector<uint64_t> parse_seed_list(const std::string& spec) {
    const auto fail = [&](const std::string& why) {
        return UsageError("--seeds '" + spec + "': " + why +
                          "; expected a list like 0-31,42 of seeds in [0, 18446744073709551615]");
    };
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    uint64_t total = 0;
    std::stringstream ss(spec);
    std::string part;
    while (std::getline(ss, part, ',')) {
        const auto dash = part.find('-');
        uint64_t a = 0, b = 0;
        if (!parse_seed(part.substr(0, dash), &a) ||
            (dash != std::string::npos && !parse_seed(part.substr(dash + 1), &b)))
            throw fail("'" + part + "' is not a seed or a range A-B");
        if (dash == std::string::npos) b = a;
        if (b < a) throw fail("range " + part + " ends before it starts");
        if (b - a >= kMaxSeeds || (total += b - a + 1) > kMaxSeeds)
            throw fail("more than " + std::to_string(kMaxSeeds) + " seeds");
        ranges.emplace_back(a, b);
    }
    if (ranges.empty()) throw UsageError("--seeds is empty");
    std::vector<uint64_t> seeds;
    for (const auto& [a, b] : ranges)
        for (uint64_t s = a;; ++s) {  // not `s <= b`: b may be the largest uint64
            seeds.push_back(s);
            if (s == b) break;
        }
    return seeds;
}

// "i/n", or "auto": torchrun's RANK and WORLD_SIZE (one shard when they are unset).
std::pair<int64_t, int64_t> parse_shard(const std::string& spec) {
    if (spec == "auto") {
        const char* rank = std::getenv("RANK");
        const char* world = std::getenv("WORLD_SIZE");
        if (!rank || !world) return {0, 1};
        return parse_shard(std::string(rank) + "/" + world);
    }
    try {
        const auto slash = spec.find('/');
        size_t a = 0, b = 0;
        const int64_t i = std::stoll(spec.substr(0, slash), &a);
        const int64_t n = std::stoll(spec.substr(slash + 1), &b);
        if (slash == std::string::npos || a != slash || b != spec.size() - slash - 1 || n < 1 ||
            i < 0 || i >= n)
            throw std::invalid_argument(spec);
        return {i, n};
    } catch (const std::exception&) {
        throw UsageError("--shard '" + spec + "': expected i/n with 0 <= i < n, or auto");
    }
}

int run_shard(const GenerateArgs& a) {
    if (!a.seeds.empty()) throw UsageError("--shard renders one image: drop --seeds");
    if (a.out.empty()) throw UsageError("--shard needs --out PART (a part file for igan merge)");
    const auto [index, count] = parse_shard(a.shard);
    const auto checked =
        igan::validate_request(make_request(a, resolve_seed(a.seed, a.quiet), a.out), a.force);
    const auto& req = checked.request();
    igan::check_output_path(a.out);
    const igan::Engine engine(a.model, a.device, a.config, a.precision);
    ProgressBar bar("shard " + std::to_string(index) + "/" + std::to_string(count), a.quiet,
                    req.width * req.height / count);
    const auto res = engine.generate_shard(engine.prepare(checked), index, count,
                                           [&](const igan::Progress& p) { bar.update(p); });
    bar.finish();
    std::cout << (a.json ? res.record_json : res.path) << "\n";
    if (!a.quiet)
        std::fprintf(stderr, "wrote %s (shard %lld of %lld, %lld tiles, %.2fs)\n",
                     res.path.c_str(), (long long)index, (long long)count, (long long)res.tiles,
                     res.seconds);
    return 0;
}

int run_generate(const GenerateArgs& a) {
    if (!a.shard.empty()) return run_shard(a);
    std::vector<std::pair<uint64_t, std::string>> jobs;
    if (!a.seeds.empty()) {
        if (a.outdir.empty()) throw UsageError("--seeds needs --outdir");
        const auto seeds = parse_seed_list(a.seeds);
        std::error_code ec;
        std::filesystem::create_directories(a.outdir, ec);
        if (ec) throw UsageError("--outdir " + a.outdir + ": cannot create it: " + ec.message());
        for (uint64_t s : seeds) {
            char name[64];
            std::snprintf(name, sizeof name, "/seed%04llu.png", (unsigned long long)s);
            jobs.emplace_back(s, a.outdir + name);
        }
    } else {
        if (a.out.empty()) throw UsageError("generate needs --out FILE.png (or --seeds with --outdir)");
        jobs.emplace_back(resolve_seed(a.seed, a.quiet), a.out);
    }
    std::vector<igan::CheckedRequest> checked;
    for (const auto& [seed, out] : jobs) {
        checked.push_back(igan::validate_request(make_request(a, seed, out), a.force));
        igan::check_output_path(out);
    }
    const igan::Engine engine(a.model, a.device, a.config, a.precision);
    for (const auto& request : checked)
        render_with_progress(engine, engine.prepare(request), a,
                             "seed " + std::to_string(request.request().seed));
    return 0;
}

RegisterCommand reg(20, [](CLI::App& app, Globals&) {
    auto args = std::make_shared<GenerateArgs>();
    auto* cmd = app.add_subcommand("generate", "render a rectangle of the endless canvas to PNG");
    add_common_render_options(cmd, *args);
    cmd->add_option("-o,--out", args->out, "output PNG");
    cmd->add_option("--seeds", args->seeds, "several seeds, e.g. 0-31,42 (with --outdir)");
    cmd->add_option("--outdir", args->outdir, "folder for --seeds outputs (seedNNNN.png)");
    cmd->add_option("--shard", args->shard,
                    "i/n: render only tile rows [rows*i/n, rows*(i+1)/n) into the part file --out "
                    "(assemble with igan merge); auto: torchrun's RANK/WORLD_SIZE");
    cmd->add_option("--cyclic-width", args->cyclic_width,
                    "make the canvas horizontally periodic with this period in pixels");
    return std::make_pair(cmd, Runner([args] { return run_generate(*args); }));
});

}  // namespace
}  // namespace igan::cli
