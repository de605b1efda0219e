#pragma once
// Random crops of real photos at a model's scale: the photos as `igan train` shows them to its
// discriminator (ImageDataset::batch in src/train/data.cpp), so that a perfect model of the
// training photos would score what the photos score against each other.
//
// A photo is first resized so that its short side is at most ceil(size * max_scale) (once, as
// training keeps it in memory). Each crop then scales that short side to size * U(1, max_scale)
// (never below size, never above the photo), takes a random square of the matching side,
// resizes it to size x size (bilinear, antialiased) and flips it horizontally with
// probability 1/2.
//
// Every crop is a pure function of (seed, photo key, crop index): reproducible, and independent
// of the order, the threads or the other photos with which it is drawn.
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace igan {

struct CropSampling {
    int64_t size = 0;        // side of the crops: the model's full_size
    double max_scale = 1.5;  // as `igan train --max-scale`
    bool flip = true;        // as training's horizontal flips
    uint64_t seed = 0;       // `igan eval --sample-seed`
};

// The photo (3, H, W) with its short side at most ceil(size * max_scale).
torch::Tensor prepare_photo(const torch::Tensor& image, const CropSampling& sampling);

// Crop `index` of a prepared photo: (3, size, size).
torch::Tensor sample_crop(const torch::Tensor& prepared, const CropSampling& sampling,
                          uint64_t photo_key, int64_t index);

// A photo's key: a hash of its file name without the folder, so that a photo keeps its crops
// whatever else its folder holds.
uint64_t photo_key(const std::string& path);

}  // namespace igan
