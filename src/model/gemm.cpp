#include "model/gemm.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <map>
#include <utility>

#ifdef IGAN_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace igan {

#ifdef IGAN_HAVE_DNNL

void sgemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
           int64_t ldb, float* c, int64_t ldc, bool transpose_b) {
    const dnnl_status_t status =
        dnnl_sgemm('N', transpose_b ? 'T' : 'N', m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
    TORCH_CHECK(status == dnnl_success, "oneDNN sgemm failed (status ", int(status), ") for ", m,
                "x", k, " by ", k, "x", n);
}

namespace {

const dnnl::engine& cpu_engine() {
    static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

}  // namespace

struct GemmRhs::Impl {
    const float* b;
    int64_t k, n, ldb;
    dnnl::engine engine = cpu_engine();
    dnnl::stream stream{engine};
    dnnl::memory packed{};  // b in the layout the first product's matmul chose
    std::map<std::pair<int64_t, int64_t>, dnnl::matmul> products{};  // by (m, lda); ldc = n
    bool plain = false;   // a matmul refused the packed layout: sgemm on b from then on
};

GemmRhs::GemmRhs(const float* b, int64_t k, int64_t n, int64_t ldb)
    : impl_(new Impl{b, k, n, ldb}) {}

GemmRhs::~GemmRhs() = default;

void GemmRhs::multiply(const float* a, int64_t m, int64_t lda, float* c, int64_t ldc) {
    Impl& s = *impl_;
    if (s.plain || ldc != s.n) return sgemm(m, s.n, s.k, a, lda, s.b, s.ldb, c, ldc);
    using dnnl::memory;
    const auto f32 = memory::data_type::f32;
    auto it = s.products.find({m, lda});
    if (it == s.products.end()) {
        const memory::desc src({m, s.k}, f32, {lda, 1}), dst({m, s.n}, f32, {s.n, 1});
        try {
            if (!s.packed) {
                const memory::desc any({s.k, s.n}, f32, memory::format_tag::any);
                dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, any, dst), s.engine);
                s.packed = memory(pd.weights_desc(), s.engine);
                memory plain_b({{s.k, s.n}, f32, {s.ldb, 1}}, s.engine, const_cast<float*>(s.b));
                dnnl::reorder(plain_b, s.packed).execute(s.stream, plain_b, s.packed);
                it = s.products.emplace(std::make_pair(m, lda), dnnl::matmul(pd)).first;
            } else {
                dnnl::matmul::primitive_desc pd(
                    dnnl::matmul::desc(src, s.packed.get_desc(), dst), s.engine);
                it = s.products.emplace(std::make_pair(m, lda), dnnl::matmul(pd)).first;
            }
        } catch (const dnnl::error&) {
            s.plain = true;
            return sgemm(m, s.n, s.k, a, lda, s.b, s.ldb, c, ldc);
        }
    }
    const memory::desc src({m, s.k}, f32, {lda, 1}), dst({m, s.n}, f32, {s.n, 1});
    memory a_mem(src, s.engine, const_cast<float*>(a)), c_mem(dst, s.engine, c);
    it->second.execute(s.stream, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, s.packed},
                                  {DNNL_ARG_DST, c_mem}});
    s.stream.wait();
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
           int64_t ldb, float* c, int64_t ldc, bool transpose_b) {
    auto wrap = [](const float* p, int64_t rows, int64_t cols, int64_t ld) {
        return at::from_blob(const_cast<float*>(p), {rows, cols}, {ld, 1}, at::kFloat);
    };
    auto out = wrap(c, m, n, ldc);
    at::mm_out(out, wrap(a, m, k, lda), transpose_b ? wrap(b, n, k, ldb).t() : wrap(b, k, n, ldb));
}

std::string sgemm_backend() { return "LibTorch's BLAS (built without oneDNN's headers)"; }

struct GemmRhs::Impl {
    const float* b;
    int64_t k, n, ldb;
};

GemmRhs::GemmRhs(const float* b, int64_t k, int64_t n, int64_t ldb)
    : impl_(new Impl{b, k, n, ldb}) {}

GemmRhs::~GemmRhs() = default;

void GemmRhs::multiply(const float* a, int64_t m, int64_t lda, float* c, int64_t ldc) {
    sgemm(m, impl_->n, impl_->k, a, lda, impl_->b, impl_->ldb, c, ldc);
}

#endif

}  // namespace igan
