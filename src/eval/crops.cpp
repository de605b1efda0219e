#include "eval/crops.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/rng.h"

namespace igan {

namespace {

constexpr uint64_t kCropStream = 0xC2095A3Dull;  // away from the canvas and training streams

torch::Tensor resize(const torch::Tensor& img, int64_t h, int64_t w) {
    namespace F = torch::nn::functional;
    return F::interpolate(img.unsqueeze(0), F::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{h, w})
                                                .mode(torch::kBilinear)
                                                .align_corners(false)
                                                .antialias(true))[0];
}

void check(const CropSampling& s) {
    if (s.size < 1 || !(s.max_scale >= 1))
        throw Error("crop sampling: size must be >= 1 and max_scale >= 1");
}

}  // namespace

torch::Tensor prepare_photo(const torch::Tensor& image, const CropSampling& s) {
    check(s);
    TORCH_CHECK(image.dim() == 3, "prepare_photo: expected (C, H, W)");
    const int64_t h = image.size(1), w = image.size(2), short_side = std::min(h, w);
    const int64_t keep = int64_t(std::ceil(double(s.size) * s.max_scale));
    if (short_side <= keep) return image.contiguous();
    const double f = double(keep) / double(short_side);
    return resize(image, std::max<int64_t>(keep, std::lround(double(h) * f)),
                  std::max<int64_t>(keep, std::lround(double(w) * f)))
        .contiguous();
}

torch::Tensor sample_crop(const torch::Tensor& photo, const CropSampling& s, uint64_t key,
                          int64_t index) {
    check(s);
    const auto u = uniforms(s.seed, kCropStream, int64_t(key), index, 0);
    const bool flip = s.flip && uniforms(s.seed, kCropStream, int64_t(key), index, 1)[0] < 0.5;
    const int64_t h = photo.size(1), w = photo.size(2), short_side = std::min(h, w);
    const int64_t target =
        std::min<int64_t>(short_side, std::lround(double(s.size) * (1 + u[0] * (s.max_scale - 1))));
    // The square that becomes size x size once the short side is scaled to `target`.
    const double scale = double(std::max(target, s.size)) / double(short_side);
    const int64_t side = std::clamp<int64_t>(std::lround(double(s.size) / scale), 1, short_side);
    const int64_t y0 = std::min(h - side, int64_t(u[1] * double(h - side + 1)));
    const int64_t x0 = std::min(w - side, int64_t(u[2] * double(w - side + 1)));
    auto crop = photo.narrow(1, y0, side).narrow(2, x0, side);
    if (side != s.size) crop = resize(crop, s.size, s.size);
    if (flip) crop = crop.flip({2});
    return crop.contiguous();
}

uint64_t photo_key(const std::string& path) {
    // FNV-1a, 64 bit.
    uint64_t hash = 0xCBF29CE484222325ull;
    for (unsigned char c : std::filesystem::path(path).filename().string()) {
        hash ^= c;
        hash *= 0x100000001B3ull;
    }
    return hash;
}

}  // namespace igan
