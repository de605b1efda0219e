#include "model/gemm.h"

#include <ATen/ATen.h>

#include <cstdio>

#ifdef IGAN_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace igan {

#ifdef IGAN_HAVE_DNNL

void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc) {
    const dnnl_status_t status = dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    TORCH_CHECK(status == dnnl_success, "oneDNN sgemm failed (status ", int(status), ") for ", m,
                "x", k, " by ", k, "x", n);
}

namespace {

const char* isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
        case dnnl_cpu_isa_sse41: return "SSE4.1";
        case dnnl_cpu_isa_avx: return "AVX";
        case dnnl_cpu_isa_avx2: return "AVX2";
        case dnnl_cpu_isa_avx2_vnni: return "AVX2 VNNI";
        case dnnl_cpu_isa_avx512_core: return "AVX-512";
        case dnnl_cpu_isa_avx512_core_vnni: return "AVX-512 VNNI";
        case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16";
        case dnnl_cpu_isa_avx512_core_amx: return "AVX-512 AMX";
        default: return "other";
    }
}

}  // namespace

std::string sgemm_backend() {
    const dnnl_version_t* v = dnnl_version();
    char text[96];
    std::snprintf(text, sizeof text, "oneDNN %d.%d.%d sgemm (%s)", v->major, v->minor, v->patch,
                  isa_name(dnnl_get_effective_cpu_isa()));
    return text;
}

#else

void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc) {
    auto wrap = [](const float* p, int64_t rows, int64_t cols, int64_t ld) {
        return at::from_blob(const_cast<float*>(p), {rows, cols}, {ld, 1}, at::kFloat);
    };
    auto out = wrap(c, m, n, ldc);
    at::mm_out(out, wrap(a, m, k, lda), wrap(b, k, n, ldb));
}

std::string sgemm_backend() { return "LibTorch's BLAS (built without oneDNN's headers)"; }

#endif

}  // namespace igan
