#pragma once
// Intra-op thread budgets per thread. LibTorch's OpenMP backend keeps the thread count in each
// OS thread's own OpenMP state, so a worker thread can run its operators on fewer threads than
// the process default without touching other threads.

namespace igan {

// Operators issued by the calling thread use `threads` threads from now on.
void set_this_thread_intra_op_threads(int threads);

// The calling thread's count and that of every thread started later. Instead of
// at::set_num_threads, which also rebuilds LibTorch's pthreadpool (used only by its mobile
// kernels) and, once called, is called again by every new thread's lazy initialisation: each
// worker thread of a render would spawn a pool thread that spins for milliseconds.
// Not thread-safe (it sets an environment variable): call it while no other thread runs.
void set_process_intra_op_threads(int threads);

// The calling thread's count set for a scope and restored after it. While passes run on worker
// threads, the thread that waits for them keeps its own operators (copies, quantising) on one
// thread: otherwise its idle OpenMP team spins after each of them, taking a core from a pass.
class IntraOpThreadsScope {
public:
    explicit IntraOpThreadsScope(int threads);
    ~IntraOpThreadsScope();
    IntraOpThreadsScope(const IntraOpThreadsScope&) = delete;
    IntraOpThreadsScope& operator=(const IntraOpThreadsScope&) = delete;

private:
    int previous_;
};

// OpenBLAS keeps one process-wide pool of its own, outside LibTorch's count; its idle threads
// spin, taking cores from the convolutions. No-op with other BLAS libraries.
void set_blas_threads(int threads);

}  // namespace igan
