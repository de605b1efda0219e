// Sharded rendering: `igan generate --shard i/n` on n processes or machines, then `igan merge`.
// A shard renders whole tile rows of the full render's tile grid with the full render's tile,
// so its pixels are those of the single render, and the merged PNG equals it byte for byte.
#include <algorithm>
#include <chrono>

#include "api/engine_impl.h"
#include "core/error.h"
#include "io/part_file.h"
#include "io/png.h"
#include "render/renderer.h"

namespace igan {

GenerateResult Engine::generate_shard(const GenerateRequest& r, int64_t index, int64_t count,
                                      const ProgressFn& progress) const {
    return generate_shard(prepare(r, true), index, count, progress);
}

GenerateResult Engine::generate_shard(const RenderJob& job, int64_t index, int64_t count,
                                      const ProgressFn& progress) const {
    auto& j = own(job);
    const GenerateRequest& r = j.request;
    if (count < 1 || index < 0 || index >= count)
        throw UsageError("--shard " + std::to_string(index) + "/" + std::to_string(count) +
                         ": want i/n with 0 <= i < n");
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    // Every shard renders whole tile rows of the whole render's plan: the same tiles, exactly.
    const TilePlan& plan = j.plan;
    const int64_t row0 = plan.rows * index / count, row1 = plan.rows * (index + 1) / count;
    const int64_t y0 = std::min(r.height, row0 * plan.tile_h);
    const int64_t y1 = std::min(r.height, row1 * plan.tile_h);

    GenerateResult result;
    result.path = r.out;
    result.record_json = j.record;
    result.tiles = (row1 - row0) * plan.cols;
    PartHeader h;
    h.width = r.width;
    h.height = r.height;
    h.y0 = y0;
    h.rows = y1 - y0;
    h.index = index;
    h.count = count;
    h.text = impl_->png_text(r, result.record_json);
    PartWriter part(r.out, h);
    if (y1 > y0)
        render_plan_rows(
            *j.model, plan.strips(row0, row1), j.options,
            [&part](const uint8_t* rows, int64_t, int64_t n) { part.write_rows(rows, n); },
            [&](int64_t done, int64_t total) {
                if (progress) progress({done, total, elapsed(), ""});
            });
    part.finish();
    result.seconds = elapsed();
    return result;
}

MergeResult merge_parts(const std::vector<std::string>& paths, const std::string& out) {
    const auto start = std::chrono::steady_clock::now();
    if (paths.empty()) throw UsageError("merge needs the part files");
    std::vector<std::unique_ptr<PartReader>> parts;
    for (const auto& p : paths) {
        try {
            parts.push_back(std::make_unique<PartReader>(p));
        } catch (const Error& e) {
            throw UsageError(e.what());
        }
    }
    std::sort(parts.begin(), parts.end(),
              [](const auto& a, const auto& b) { return a->header().index < b->header().index; });
    const PartHeader& first = parts.front()->header();
    const int64_t n = first.count;
    std::vector<std::string> problems;
    if (int64_t(parts.size()) != n)
        problems.push_back("got " + std::to_string(parts.size()) + " parts of a render split " +
                           std::to_string(n) + " ways");
    int64_t y = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
        const PartHeader& h = parts[i]->header();
        const std::string name = "part " + std::to_string(h.index);
        if (h.count != n || h.width != first.width || h.height != first.height ||
            h.text != first.text) {
            problems.push_back(name + " belongs to another render");
            continue;
        }
        if (h.index != int64_t(i)) {
            problems.push_back("part " + std::to_string(i) + " is missing or repeated");
            break;
        }
        if (h.y0 != y) problems.push_back(name + " starts at row " + std::to_string(h.y0) +
                                          ", expected " + std::to_string(y));
        y = h.y0 + h.rows;
    }
    if (problems.empty() && y != first.height)
        problems.push_back("the parts cover " + std::to_string(y) + " of " +
                           std::to_string(first.height) + " rows");
    if (!problems.empty()) {
        std::string msg = "cannot merge:";
        for (const auto& p : problems) msg += "\n  " + p;
        throw UsageError(msg);
    }
    check_output_path(out);
    PngWriter png(out, first.width, first.height, first.text);
    const int64_t chunk = std::max<int64_t>(1, (int64_t(1) << 22) / (3 * first.width));
    std::vector<uint8_t> rows(size_t(3 * first.width * chunk));
    for (auto& part : parts) {
        for (int64_t done = 0; done < part->header().rows; done += chunk) {
            const int64_t k = std::min(chunk, part->header().rows - done);
            part->read_rows(rows.data(), k);
            png.write_rows(rows.data(), k);
        }
    }
    png.finish();
    MergeResult result;
    result.path = out;
    result.width = first.width;
    result.height = first.height;
    result.parts = n;
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
}

}  // namespace igan
