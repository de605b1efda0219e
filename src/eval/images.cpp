#include "eval/images.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "io/png.h"

namespace igan {

namespace fs = std::filesystem;

std::vector<std::string> list_images(const std::string& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw UsageError(dir + ": no such folder");
    if (!fs::is_directory(dir, ec)) throw UsageError(dir + ": not a folder");
    std::vector<std::string> paths;
    fs::directory_iterator it(dir, ec);
    if (ec) throw UsageError(dir + ": cannot read the folder (" + ec.message() + ")");
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) throw UsageError(dir + ": cannot read the folder (" + ec.message() + ")");
        std::string ext = it->path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(),
                       [](unsigned char c) { return char(std::tolower(c)); });
        if (ext != ".png" && ext != ".jpg" && ext != ".jpeg") continue;
        if (!it->is_regular_file(ec)) continue;
        paths.push_back(it->path().string());
    }
    if (paths.empty()) throw UsageError(dir + ": no images (.png, .jpg, .jpeg) in the folder");
    std::sort(paths.begin(), paths.end());
    return paths;
}

torch::Tensor rgb8_to_tensor(const uint8_t* rgb, int64_t w, int64_t h) {
    auto t = torch::from_blob(const_cast<uint8_t*>(rgb), {h, w, 3}, torch::kUInt8);
    return t.permute({2, 0, 1}).to(torch::kFloat).div(127.5).sub(1.0).contiguous();
}

torch::Tensor load_image_tensor(const std::string& path) {
    Image img;
    try {
        img = read_image(path);
    } catch (const Error& e) {
        throw UsageError(e.what());  // a bad input image is a usage error (README, exit codes)
    }
    return rgb8_to_tensor(img.pixels.data(), img.width, img.height);
}

torch::Tensor quantize_levels(const torch::Tensor& image) {
    return ((image.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1;
}

torch::Tensor center_crop_resize(const torch::Tensor& image, int64_t size) {
    TORCH_CHECK(image.dim() == 3 && size > 0, "center_crop_resize: expected (C, H, W)");
    const int64_t h = image.size(1), w = image.size(2), side = std::min(h, w);
    auto sq = image.narrow(1, (h - side) / 2, side).narrow(2, (w - side) / 2, side);
    if (side == size) return sq.contiguous();
    namespace F = torch::nn::functional;
    return F::interpolate(sq.unsqueeze(0), F::InterpolateFuncOptions()
                                               .size(std::vector<int64_t>{size, size})
                                               .mode(torch::kBilinear)
                                               .align_corners(false)
                                               .antialias(side > size))[0]
        .contiguous();
}

torch::Tensor resize_square(const torch::Tensor& images, int64_t size) {
    TORCH_CHECK(images.dim() == 4, "resize_square: expected (N, C, H, W)");
    if (images.size(2) == size && images.size(3) == size) return images;
    namespace F = torch::nn::functional;
    return F::interpolate(images, F::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{size, size})
                                      .mode(torch::kBilinear)
                                      .align_corners(false));
}

}  // namespace igan
