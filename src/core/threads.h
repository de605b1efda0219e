#pragma once
// Intra-op thread budgets per thread. LibTorch's OpenMP backend keeps the thread count in each
// OS thread's own OpenMP state, so a worker thread can run its operators on fewer threads than
// the process default without touching other threads.

namespace igan {

// Operators issued by the calling thread use `threads` threads from now on.
void set_this_thread_intra_op_threads(int threads);

// OpenBLAS keeps one process-wide pool of its own, outside LibTorch's count; its idle threads
// spin, taking cores from the convolutions. No-op with other BLAS libraries.
void set_blas_threads(int threads);

}  // namespace igan
