#pragma once
// The single-precision matrix product behind the up layers' tap planes.
#include <cstdint>
#include <memory>
#include <string>

namespace igan {

// c (m x n) = a (m x k) * b (k x n), row-major with leading dimensions lda, ldb, ldc, on the
// calling thread's intra-op thread count. Through oneDNN's sgemm where the build found oneDNN:
// it picks its kernels for the CPU at run time (AVX-512 where there is some), whereas OpenBLAS
// may be pinned to Haswell's AVX2 ones (OPENBLAS_CORETYPE), which ran the up layers at half the
// 3x3 layers' speed (issue 18). Otherwise through LibTorch's BLAS. With transpose_b, b is
// stored n x k (a channels-last image's pixels by channels) and multiplied transposed.
void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool transpose_b = false);

// A right operand b (k x n, row-major, leading dimension ldb) prepared once for products by
// several left operands: the up layer multiplies one band of input pixels by the weights of one
// block of output channels at a time, so that each block's tap planes are still in cache when
// they are summed. oneDNN's matmul reorders b into its own layout once, where sgemm would pack
// it again for every block; without oneDNN, products go through sgemm. b must outlive it.
class GemmRhs {
public:
    GemmRhs(const float* b, int64_t k, int64_t n, int64_t ldb);
    ~GemmRhs();
    GemmRhs(const GemmRhs&) = delete;
    GemmRhs& operator=(const GemmRhs&) = delete;
    // c (m x n, leading dimension ldc) = a (m x k, leading dimension lda) * b.
    void multiply(const float* a, int64_t m, int64_t lda, float* c, int64_t ldc);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Which library sgemm uses, with its version and the instruction set it runs on.
std::string sgemm_backend();

}  // namespace igan
