#include "export/pyramid.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace igan {

void Pyramid::Band::copy(int64_t x0, int64_t x1, int64_t ya, int64_t yb, uint8_t* out,
                         int64_t stride) const {
    for (int64_t y = ya; y < yb; ++y)
        std::memcpy(out + stride * (y - ya), line(y) + 3 * x0, size_t(3 * (x1 - x0)));
}

Pyramid::Pyramid(int64_t width, int64_t height, int64_t levels, int64_t tile, int64_t overlap,
                 BandFn on_band)
    : tile_(tile), overlap_(overlap), on_band_(std::move(on_band)) {
    for (int64_t k = 0; k < levels; ++k) {
        levels_.push_back(Level{width, height, {}, 0, 0, 0, {}});
        width = (width + 1) / 2;
        height = (height + 1) / 2;
    }
}

void Pyramid::push(size_t k, const uint8_t* row) {
    Level& l = levels_[k];
    l.rows.emplace_back(row, row + 3 * l.width);
    ++l.received;
    flush(k, false);
    if (k + 1 == levels_.size()) return;
    if (l.pending.empty()) {
        l.pending.assign(row, row + 3 * l.width);
    } else {
        feed_coarser(k, l.pending.data(), row);
        l.pending.clear();
    }
}

void Pyramid::finish() {
    for (size_t k = 0; k < levels_.size(); ++k) {
        Level& l = levels_[k];
        if (l.received != l.height) throw Error("export: a pyramid level got too few rows");
        if (k + 1 < levels_.size() && !l.pending.empty()) {
            feed_coarser(k, l.pending.data(), nullptr);
            l.pending.clear();
        }
        flush(k, true);
    }
}

// The 2x2 mean of rows a and b (b null: the last row of an odd height); an odd
// width's last column averages with itself.
void Pyramid::feed_coarser(size_t k, const uint8_t* a, const uint8_t* b) {
    const int64_t width = levels_[k].width;
    const int64_t w = (width + 1) / 2;
    std::vector<uint8_t> out(size_t(3 * w));
    for (int64_t i = 0; i < w; ++i) {
        const int64_t x0 = 2 * i, x1 = std::min(2 * i + 1, width - 1);
        for (int c = 0; c < 3; ++c) {
            int sum = a[3 * x0 + c] + a[3 * x1 + c], n = 2;
            if (b) sum += b[3 * x0 + c] + b[3 * x1 + c], n = 4;
            out[size_t(3 * i + c)] = uint8_t((sum + n / 2) / n);
        }
    }
    push(k + 1, out.data());
}

// Emits every tile row whose rows are all here; drops the rows no later tile
// row needs.
void Pyramid::flush(size_t k, bool last) {
    Level& l = levels_[k];
    while (l.next_row * tile_ < l.height) {
        Band band;
        band.level = int64_t(k);
        band.row = l.next_row;
        band.width = l.width;
        band.height = l.height;
        band.y0 = std::max<int64_t>(0, l.next_row * tile_ - overlap_);
        band.y1 = std::min(l.height, (l.next_row + 1) * tile_ + overlap_);
        if (l.received < band.y1 && !last) return;
        band.rows = &l.rows;
        band.first = l.first;
        on_band_(band);
        ++l.next_row;
        const int64_t keep_from = std::max<int64_t>(0, l.next_row * tile_ - overlap_);
        while (l.first < keep_from && !l.rows.empty()) {
            l.rows.pop_front();
            ++l.first;
        }
    }
}

int64_t levels_to_fit(int64_t width, int64_t height, int64_t tile) {
    int64_t levels = 1;
    while (width > tile || height > tile) {
        width = (width + 1) / 2;
        height = (height + 1) / 2;
        ++levels;
    }
    return levels;
}

}  // namespace igan
