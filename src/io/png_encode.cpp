#include "io/png_encode.h"

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <thread>

#include "core/error.h"
#include "igan/image.h"

namespace igan {

namespace {

constexpr size_t kWindowBytes = 32 << 10;  // deflate's window: a band's dictionary
// Smaller bands lose more to their flush and to matches across their start than threads gain.
constexpr size_t kMinBandBytes = 256 << 10;
constexpr size_t kIdatBytes = 1 << 20;  // data per IDAT chunk
constexpr int kBytesPerPixel = 3;

void put_be32(std::string* out, uint32_t v) {
    const char b[4] = {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    out->append(b, 4);
}

void append_chunk(std::string* out, const char* type, const void* data, size_t size) {
    put_be32(out, uint32_t(size));
    const size_t at = out->size();
    out->append(type, 4);
    out->append(static_cast<const char*>(data), size);
    put_be32(out,
             uint32_t(crc32(0, reinterpret_cast<const Bytef*>(out->data() + at), uInt(size + 4))));
}

// libpng's heuristic: the filter whose output has the smallest sum of magnitudes, the bytes
// read as signed, usually compresses best.
uint64_t filter_cost(const uint8_t* p, size_t n) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; ++i) {
        const int v = int8_t(p[i]);
        sum += uint32_t(v < 0 ? -v : v);
    }
    return sum;
}

void apply_filter(int type, const uint8_t* row, const uint8_t* up, size_t n, uint8_t* out) {
    constexpr size_t bpp = kBytesPerPixel;
    const size_t head = std::min(bpp, n);
    switch (type) {
        case 1:  // Sub
            std::memcpy(out, row, head);
            for (size_t i = bpp; i < n; ++i) out[i] = uint8_t(row[i] - row[i - bpp]);
            break;
        case 2:  // Up
            for (size_t i = 0; i < n; ++i) out[i] = uint8_t(row[i] - up[i]);
            break;
        case 3:  // Average
            for (size_t i = 0; i < head; ++i) out[i] = uint8_t(row[i] - (up[i] >> 1));
            for (size_t i = bpp; i < n; ++i)
                out[i] = uint8_t(row[i] - ((row[i - bpp] + up[i]) >> 1));
            break;
        case 4:  // Paeth
            for (size_t i = 0; i < head; ++i) out[i] = uint8_t(row[i] - up[i]);
            for (size_t i = bpp; i < n; ++i) {
                const int a = row[i - bpp], b = up[i], c = up[i - bpp];
                const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
                const int pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
                out[i] = uint8_t(row[i] - pred);
            }
            break;
        default:  // None
            std::memcpy(out, row, n);
    }
}

// Writes the filter byte and the filtered row (n + 1 bytes) to `out`; `scratch` holds 2n bytes.
void filter_row(const uint8_t* row, const uint8_t* up, size_t n, uint8_t* out, uint8_t* scratch) {
    uint8_t* best = scratch;
    uint8_t* candidate = scratch + n;
    apply_filter(0, row, up, n, best);
    uint64_t best_cost = filter_cost(best, n);
    int best_type = 0;
    for (int type = 1; type <= 4; ++type) {
        apply_filter(type, row, up, n, candidate);
        const uint64_t cost = filter_cost(candidate, n);
        if (cost < best_cost) {
            std::swap(best, candidate);
            best_cost = cost;
            best_type = type;
        }
    }
    out[0] = uint8_t(best_type);
    std::memcpy(out + 1, best, n);
}

// Raw deflate of one band, ended by a sync flush (byte-aligned, not final) or, for the image's
// last band, by the final block.
std::string deflate_band(const uint8_t* data, size_t size, const std::vector<uint8_t>& dictionary,
                         int level, bool last) {
    z_stream zs{};
    if (deflateInit2(&zs, level, Z_DEFLATED, -15, 8, Z_FILTERED) != Z_OK)
        throw Error("PNG encoder: deflateInit2 failed");
    std::string out;
    try {
        if (!dictionary.empty() &&
            deflateSetDictionary(&zs, dictionary.data(), uInt(dictionary.size())) != Z_OK)
            throw Error("PNG encoder: deflateSetDictionary failed");
        out.resize(deflateBound(&zs, uLong(size)) + 16);
        // zlib counts in 32-bit units: feed and drain at most 1 GiB a call.
        constexpr size_t kStep = size_t(1) << 30;
        size_t consumed = 0;
        do {
            const size_t step = std::min(size - consumed, kStep);
            zs.next_in = const_cast<Bytef*>(data + consumed);
            zs.avail_in = uInt(step);
            consumed += step;
            const int flush = consumed < size ? Z_NO_FLUSH : last ? Z_FINISH : Z_SYNC_FLUSH;
            do {
                if (out.size() - zs.total_out < 64) out.resize(out.size() * 2);
                zs.next_out = reinterpret_cast<Bytef*>(out.data()) + zs.total_out;
                zs.avail_out = uInt(std::min(out.size() - zs.total_out, kStep));
                if (deflate(&zs, flush) == Z_STREAM_ERROR)
                    throw Error("PNG encoder: deflate failed");
            } while (zs.avail_out == 0);
        } while (consumed < size);
    } catch (...) {
        deflateEnd(&zs);
        throw;
    }
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

// fn(0 .. n-1), each on its own thread (the caller's among them); rethrows the first failure.
template <typename Fn>
void run_bands(size_t n, const Fn& fn) {
    std::vector<std::exception_ptr> errors(n);
    auto guarded = [&](size_t k) {
        try {
            fn(k);
        } catch (...) {
            errors[k] = std::current_exception();
        }
    };
    std::vector<std::thread> workers;
    for (size_t k = 1; k < n; ++k) workers.emplace_back(guarded, k);
    guarded(0);
    for (auto& w : workers) w.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

// The last kWindowBytes of a followed by the `size` bytes at b.
std::vector<uint8_t> tail_window(const std::vector<uint8_t>& a, const uint8_t* b, size_t size) {
    const size_t from_b = std::min(size, kWindowBytes);
    const size_t from_a = std::min(a.size(), kWindowBytes - from_b);
    std::vector<uint8_t> out(a.end() - ptrdiff_t(from_a), a.end());
    out.insert(out.end(), b + size - from_b, b + size);
    return out;
}

std::atomic<int> g_png_threads{1};

}  // namespace

void set_png_threads(int threads) { g_png_threads = std::max(1, threads); }

int png_threads() { return g_png_threads; }

std::string png_head(int64_t width, int64_t height,
                     const std::vector<std::pair<std::string, std::string>>& text_chunks) {
    std::string out("\x89PNG\r\n\x1a\n", 8);
    std::string ihdr;
    put_be32(&ihdr, uint32_t(width));
    put_be32(&ihdr, uint32_t(height));
    // 8 bits, RGB, deflate, adaptive filtering, not interlaced
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);
    append_chunk(&out, "IHDR", ihdr.data(), ihdr.size());
    for (const auto& [key, value] : text_chunks) {
        // keyword, NUL, not compressed, method 0, empty language tag and translated keyword
        std::string itxt = key + std::string("\0\0\0\0\0", 5) + value;
        append_chunk(&out, "iTXt", itxt.data(), itxt.size());
    }
    return out;
}

std::string png_tail() {
    std::string out;
    append_chunk(&out, "IEND", nullptr, 0);
    return out;
}

PngImageEncoder::PngImageEncoder(int64_t width, int64_t height, int level, int threads)
    : width_(width), height_(height), level_(level), threads_(std::max(1, threads)) {}

void PngImageEncoder::add_rows(const uint8_t* rgb, int64_t n_rows, std::string* out) {
    if (n_rows <= 0) return;
    const size_t n = size_t(width_) * kBytesPerPixel;
    const size_t row_bytes = n + 1;
    const bool first = rows_ == 0, last = rows_ + n_rows == height_;

    // Filter the new rows behind the pending ones: given the row above, rows filter alone.
    if (first) previous_row_.assign(n, 0);  // the first row's "up" is zero
    const size_t at = pending_.size();
    pending_.resize(at + size_t(n_rows) * row_bytes);
    const int64_t parts = std::clamp<int64_t>(threads_, 1, n_rows);
    run_bands(size_t(parts), [&](size_t k) {
        const int64_t r0 = int64_t(k) * n_rows / parts, r1 = int64_t(k + 1) * n_rows / parts;
        std::vector<uint8_t> scratch(2 * n);
        for (int64_t r = r0; r < r1; ++r) {
            const uint8_t* up = r == 0 ? previous_row_.data() : rgb + size_t(r - 1) * n;
            filter_row(rgb + size_t(r) * n, up, n, pending_.data() + at + size_t(r) * row_bytes,
                       scratch.data());
        }
    });
    std::memcpy(previous_row_.data(), rgb + size_t(n_rows - 1) * n, n);
    rows_ += n_rows;

    // Bands sit at fixed rows of the image, so the bytes depend on neither the thread count nor
    // how the rows arrive (a merged shard render equals one render byte for byte).
    const size_t band_bytes =
        std::max<size_t>(1, (kMinBandBytes + row_bytes - 1) / row_bytes) * row_bytes;
    size_t bands = pending_.size() / band_bytes;
    if (last && pending_.size() > bands * band_bytes) ++bands;
    if (first) {  // zlib header: deflate, 32 KiB window, the level class, check bits
        const int cmf = 0x78;
        int flg = (level_ < 2 ? 0 : level_ < 6 ? 1 : level_ == 6 ? 2 : 3) << 6;
        flg += 31 - (cmf * 256 + flg) % 31;
        compressed_ += char(cmf);
        compressed_ += char(flg);
    }
    const auto band_size = [&](size_t k) {
        return std::min(band_bytes, pending_.size() - k * band_bytes);
    };
    for (size_t group = 0; group < bands; group += size_t(threads_)) {
        const size_t count = std::min(size_t(threads_), bands - group);
        std::vector<std::vector<uint8_t>> dictionaries(count);
        std::vector<std::string> pieces(count);
        std::vector<uint32_t> adlers(count);
        for (size_t k = 0; k < count; ++k) {
            dictionaries[k] = window_;
            const uint8_t* band = pending_.data() + (group + k) * band_bytes;
            window_ = tail_window(window_, band, band_size(group + k));
        }
        run_bands(count, [&](size_t k) {
            const uint8_t* band = pending_.data() + (group + k) * band_bytes;
            const size_t size = band_size(group + k);
            adlers[k] = uint32_t(adler32_z(adler32(0, nullptr, 0), band, size));
            const bool final_band = last && group + k + 1 == bands;
            pieces[k] = deflate_band(band, size, dictionaries[k], level_, final_band);
        });
        for (size_t k = 0; k < count; ++k) {
            adler_ = uint32_t(adler32_combine(adler_, adlers[k], z_off_t(band_size(group + k))));
            compressed_ += pieces[k];
        }
    }
    const size_t compressed_bytes = std::min(pending_.size(), bands * band_bytes);
    pending_.erase(pending_.begin(), pending_.begin() + ptrdiff_t(compressed_bytes));
    if (last) put_be32(&compressed_, adler_);

    // Whole IDAT chunks only, the rest at the end: chunk boundaries are the image's too.
    size_t emitted = 0;
    while (compressed_.size() - emitted >= kIdatBytes || (last && emitted < compressed_.size())) {
        const size_t size = std::min(kIdatBytes, compressed_.size() - emitted);
        append_chunk(out, "IDAT", compressed_.data() + emitted, size);
        emitted += size;
    }
    compressed_.erase(0, emitted);
}

}  // namespace igan
