#include "core/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <omp.h>

#include <cstdlib>
#include <string>

namespace igan {

void set_this_thread_intra_op_threads(int threads) {
    // LibTorch initialises a thread's count lazily, from the process-wide one, on its first
    // parallel operator: do that now so it cannot overwrite ours later.
    at::internal::lazy_init_num_threads();
    omp_set_num_threads(threads > 0 ? threads : 1);
}

void set_process_intra_op_threads(int threads) {
    const int n = threads > 0 ? threads : 1;
    // What LibTorch's lazy per-thread initialisation reads while at::set_num_threads was never
    // called: then a new thread takes this count and nothing else.
    setenv("OMP_NUM_THREADS", std::to_string(n).c_str(), 1);
    set_this_thread_intra_op_threads(n);
}

IntraOpThreadsScope::IntraOpThreadsScope(int threads) {
    at::internal::lazy_init_num_threads();
    previous_ = omp_get_max_threads();
    set_this_thread_intra_op_threads(threads);
}

IntraOpThreadsScope::~IntraOpThreadsScope() { omp_set_num_threads(previous_); }

void set_blas_threads(int threads) {
    using SetFn = void (*)(int);
    static const auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (set) set(threads > 0 ? threads : 1);
}

}  // namespace igan
