#pragma once
// The 2x2 box-filter pyramid of a rectangle whose rows arrive top to bottom,
// cut into rows of square tiles: every export format (DeepZoom, PMTiles, COG)
// is this pyramid plus a tile sink. Memory: per level, the rows of one band of
// tiles (plus overlap) and one pending row, so it grows with the width, never
// with the height.
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

namespace igan {

class Pyramid {
public:
    // Rows [y0, y1) of one level, enough for its tile row `row`: [row * tile -
    // overlap, (row + 1) * tile + overlap) clipped to the level. Valid during the
    // callback only.
    struct Band {
        int64_t level = 0;  // 0: the input; level k is ceil(width / 2^k) x ceil(height / 2^k)
        int64_t row = 0;
        int64_t width = 0, height = 0;  // of the level
        int64_t y0 = 0, y1 = 0;
        const std::deque<std::vector<uint8_t>>* rows = nullptr;  // rows[0] is row `first`
        int64_t first = 0;

        int64_t columns(int64_t tile) const { return (width + tile - 1) / tile; }
        const uint8_t* line(int64_t y) const { return (*rows)[size_t(y - first)].data(); }
        // Pixels [x0, x1) x [ya, yb) of this band into `out`, rows `stride` bytes
        // apart.
        void copy(int64_t x0, int64_t x1, int64_t ya, int64_t yb, uint8_t* out,
                  int64_t stride) const;
    };
    using BandFn = std::function<void(const Band&)>;

    // `levels` >= 1 levels; on_band sees each level's bands in order, finer
    // levels first whenever both are ready.
    Pyramid(int64_t width, int64_t height, int64_t levels, int64_t tile, int64_t overlap,
            BandFn on_band);

    // The next row of level 0 (3 * width bytes of RGB).
    void push(const uint8_t* row) { push(0, row); }
    // After the last row: emits the remaining bands; throws when rows are
    // missing.
    void finish();

private:
    struct Level {
        int64_t width, height;
        std::deque<std::vector<uint8_t>> rows;  // rows [first, first + rows.size())
        int64_t first = 0, received = 0, next_row = 0;
        std::vector<uint8_t> pending;  // an even row waiting for its partner (next level)
    };

    void push(size_t k, const uint8_t* row);
    void feed_coarser(size_t k, const uint8_t* a, const uint8_t* b);
    void flush(size_t k, bool last);

    int64_t tile_, overlap_;
    BandFn on_band_;
    std::vector<Level> levels_;
};

// Pyramid levels until a level fits one tile (both sides <= tile): 1 + that
// many halvings.
int64_t levels_to_fit(int64_t width, int64_t height, int64_t tile);

}  // namespace igan
