#pragma once
// InceptionV3 up to the 2048-d pool3 features: the FID network of Heusel et al. (TF
// inception-2015-12-05) in the layout of pytorch-fid (mseitzer/pytorch-fid,
// src/pytorch_fid/inception.py: fid_inception_v3, FIDInceptionA/C/E_1/E_2), which patches
// torchvision's Inception3 in two ways: the average pools of the A, C and first E blocks exclude
// the zero padding, and the last E block max-pools. Module names equal the torchvision state-dict
// keys ("Mixed_5b.branch1x1.conv.weight", "...bn.running_var"), so a converted pytorch-fid
// checkpoint loads strictly. No weights ship with igan; docs/evaluation.md shows how to convert
// them.
#include <torch/torch.h>

#include <map>
#include <string>

namespace igan {

// Conv (no bias) + BatchNorm (eps 1e-3) + ReLU; keys "conv", "bn".
class BasicConv2dImpl : public torch::nn::Module {
public:
    BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel, int64_t stride = 1,
                    torch::ExpandingArray<2> padding = 0);
    torch::Tensor forward(const torch::Tensor& x);
    torch::nn::Conv2d conv{nullptr};
    torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

// FIDInceptionA: 1x1, 5x5, double 3x3 and pool branches; out 224 + pool_features channels.
class InceptionAImpl : public torch::nn::Module {
public:
    InceptionAImpl(int64_t in, int64_t pool_features);
    torch::Tensor forward(const torch::Tensor& x);
    BasicConv2d branch1x1{nullptr}, branch5x5_1{nullptr}, branch5x5_2{nullptr},
        branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr},
        branch_pool{nullptr};
};
TORCH_MODULE(InceptionA);

// InceptionB (Mixed_6a): grid reduction to 17x17, out 480 + in channels.
class InceptionBImpl : public torch::nn::Module {
public:
    explicit InceptionBImpl(int64_t in);
    torch::Tensor forward(const torch::Tensor& x);
    BasicConv2d branch3x3{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr},
        branch3x3dbl_3{nullptr};
};
TORCH_MODULE(InceptionB);

// FIDInceptionC: factorised 7x7 branches; out 768 channels.
class InceptionCImpl : public torch::nn::Module {
public:
    InceptionCImpl(int64_t in, int64_t channels_7x7);
    torch::Tensor forward(const torch::Tensor& x);
    BasicConv2d branch1x1{nullptr}, branch7x7_1{nullptr}, branch7x7_2{nullptr},
        branch7x7_3{nullptr}, branch7x7dbl_1{nullptr}, branch7x7dbl_2{nullptr},
        branch7x7dbl_3{nullptr}, branch7x7dbl_4{nullptr}, branch7x7dbl_5{nullptr},
        branch_pool{nullptr};
};
TORCH_MODULE(InceptionC);

// InceptionD (Mixed_7a): grid reduction to 8x8, out 512 + in channels.
class InceptionDImpl : public torch::nn::Module {
public:
    explicit InceptionDImpl(int64_t in);
    torch::Tensor forward(const torch::Tensor& x);
    BasicConv2d branch3x3_1{nullptr}, branch3x3_2{nullptr}, branch7x7x3_1{nullptr},
        branch7x7x3_2{nullptr}, branch7x7x3_3{nullptr}, branch7x7x3_4{nullptr};
};
TORCH_MODULE(InceptionD);

// FIDInceptionE_1 (max_pool = false) and FIDInceptionE_2 (true); out 2048 channels.
class InceptionEImpl : public torch::nn::Module {
public:
    InceptionEImpl(int64_t in, bool max_pool);
    torch::Tensor forward(const torch::Tensor& x);
    bool use_max_pool;
    BasicConv2d branch1x1{nullptr}, branch3x3_1{nullptr}, branch3x3_2a{nullptr},
        branch3x3_2b{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr},
        branch3x3dbl_3a{nullptr}, branch3x3dbl_3b{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionE);

class InceptionV3Impl : public torch::nn::Module {
public:
    static constexpr int64_t kFeatures = 2048;
    static constexpr int64_t kInputSize = 299;
    InceptionV3Impl();
    // (N, 3, H, W) in [-1, 1] -> (N, 2048) pool3 features. Inputs are first resized bilinearly
    // (align_corners false, no antialias: as pytorch-fid) to input_size; 299 for real FID,
    // smaller (>= 75) only in tests.
    torch::Tensor forward(const torch::Tensor& images, int64_t input_size = kInputSize);
    BasicConv2d Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr},
        Conv2d_3b_1x1{nullptr}, Conv2d_4a_3x3{nullptr};
    InceptionA Mixed_5b{nullptr}, Mixed_5c{nullptr}, Mixed_5d{nullptr};
    InceptionB Mixed_6a{nullptr};
    InceptionC Mixed_6b{nullptr}, Mixed_6c{nullptr}, Mixed_6d{nullptr}, Mixed_6e{nullptr};
    InceptionD Mixed_7a{nullptr};
    InceptionE Mixed_7b{nullptr}, Mixed_7c{nullptr};
};
TORCH_MODULE(InceptionV3);

// Loads weights strictly (every problem listed in one igan::Error). Tolerated: the classifier
// head "fc.weight"/"fc.bias" (unused, skipped) and absent "*.num_batches_tracked" buffers
// (unused in inference). Returns the network in eval mode on `device`.
InceptionV3 load_inception(const std::string& path, const torch::Device& device = torch::kCPU);
// The same from tensors in memory (CPU, eval mode); `source` names them in errors.
InceptionV3 inception_from_tensors(const std::map<std::string, torch::Tensor>& tensors,
                                   const std::string& source);

}  // namespace igan
