// Copies every photo of a folder as a JPEG (quality 95) whose short side is at most SHORT pixels,
// filtered as igan train's loader resizes (antialiased bilinear: a triangle filter as wide as the
// scale), so that the loader reads nearly what it makes of the original. scripts/gpu-prep.sh
// builds it to fit the training photos into the GPU machine's 64-MiB working tree.
//   shrink_photos SRC_DIR DEST_DIR SHORT
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include "core/error.h"
#include "io/png.h"

namespace {

// Resamples `lines` lines of n_in samples to n_out: sample k of line l is at
// in[l * in_line + k * in_step], written to out[l * out_line + i * out_step].
void resize_lines(const float* in, int64_t n_in, int64_t in_line, int64_t in_step, float* out,
                  int64_t n_out, int64_t out_line, int64_t out_step, int64_t lines) {
    const double scale = double(n_in) / double(n_out), support = std::max(1.0, scale);
    std::vector<double> w;
    for (int64_t i = 0; i < n_out; ++i) {
        const double centre = (double(i) + 0.5) * scale;
        const int64_t k0 = std::max<int64_t>(0, int64_t(std::floor(centre - support)));
        const int64_t k1 = std::min<int64_t>(n_in, int64_t(std::ceil(centre + support)));
        w.clear();
        double total = 0;
        for (int64_t k = k0; k < k1; ++k) {
            w.push_back(std::max(0.0, 1.0 - std::abs(double(k) + 0.5 - centre) / support));
            total += w.back();
        }
        for (int64_t l = 0; l < lines; ++l) {
            double sum = 0;
            for (int64_t k = k0; k < k1; ++k)
                sum += w[size_t(k - k0)] * in[l * in_line + k * in_step];
            out[l * out_line + i * out_step] = float(sum / total);
        }
    }
}

// libjpeg's default error handler prints and exits: fine for a one-shot tool.
bool write_jpeg(const std::string& path, const std::vector<uint8_t>& rgb, int64_t w, int64_t h) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    jpeg_compress_struct c{};
    jpeg_error_mgr err{};
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = JDIMENSION(w);
    c.image_height = JDIMENSION(h);
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = const_cast<uint8_t*>(rgb.data() + size_t(c.next_scanline) * size_t(w) * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return std::fclose(f) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    if (argc != 4 || std::atoll(argv[3]) < 1) {
        std::fprintf(stderr, "usage: %s SRC_DIR DEST_DIR SHORT\n", argv[0]);
        return 2;
    }
    const int64_t short_max = std::atoll(argv[3]);
    fs::create_directories(argv[2]);
    int failed = 0;
    for (const auto& e : fs::directory_iterator(argv[1])) {
        try {
            const igan::Image img = igan::read_image(e.path().string());
            const int64_t h = img.height, w = img.width, s = std::min(h, w);
            const double f = s > short_max ? double(short_max) / double(s) : 1.0;
            const int64_t oh = std::max<int64_t>(1, std::lround(double(h) * f));
            const int64_t ow = std::max<int64_t>(1, std::lround(double(w) * f));
            const std::vector<float> px(img.pixels.begin(), img.pixels.end());
            // Columns (each of the w * 3 interleaved samples of a row is one line), then rows,
            // one colour at a time.
            std::vector<float> tall(size_t(oh * w * 3)), out(size_t(oh * ow * 3));
            resize_lines(px.data(), h, 1, w * 3, tall.data(), oh, 1, w * 3, w * 3);
            for (int c = 0; c < 3; ++c)
                resize_lines(tall.data() + c, w, w * 3, 3, out.data() + c, ow, ow * 3, 3, oh);
            std::vector<uint8_t> rgb(out.size());
            for (size_t i = 0; i < out.size(); ++i)
                rgb[i] = uint8_t(std::clamp(std::lround(out[i]), 0L, 255L));
            const auto dest = fs::path(argv[2]) / (e.path().stem().string() + ".jpg");
            if (!write_jpeg(dest.string(), rgb, ow, oh)) throw igan::Error("cannot write " + dest.string());
        } catch (const std::exception& ex) {
            std::fprintf(stderr, "warning: %s\n", ex.what());
            ++failed;
        }
    }
    return failed ? 1 : 0;
}
