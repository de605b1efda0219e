#pragma once
// Image folders for evaluation. A folder holds the .png/.jpg/.jpeg files directly inside it
// (sorted by name; other files and subfolders are ignored). Images become (3, H, W) float
// tensors in [-1, 1], the generator's range.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace igan {

// Sorted image paths of `dir`; throws UsageError when it is missing, not a folder, unreadable
// or holds no image.
std::vector<std::string> list_images(const std::string& dir);

// Decodes a PNG or JPEG (igan::Error naming the file when it is corrupt) into (3, H, W).
torch::Tensor load_image_tensor(const std::string& path);

// 8-bit interleaved RGB rows into (3, h, w) in [-1, 1].
torch::Tensor rgb8_to_tensor(const uint8_t* rgb, int64_t w, int64_t h);

// Rounds [-1, 1] values to the 256 levels a PNG holds (the tensor stays float).
torch::Tensor quantize_levels(const torch::Tensor& image);

// The largest centred square, resized to size x size with antialiased bilinear filtering
// (for photos much larger than the training size). A no-op when already size x size.
torch::Tensor center_crop_resize(const torch::Tensor& image, int64_t size);

// (N, C, H, W) -> (N, C, size, size), bilinear without antialiasing (align_corners false), as
// FID resizes its inputs; the images themselves when already that size.
torch::Tensor resize_square(const torch::Tensor& images, int64_t size);

}  // namespace igan
