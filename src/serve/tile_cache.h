#pragma once
// The tile server's memory: an LRU cache bounded in bytes, and single-flight production (any
// number of concurrent requests for one missing key run the producer once and share its result).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace igan {

using Blob = std::shared_ptr<const std::string>;

// Thread-safe. An entry's cost is its size plus its key; an entry larger than the whole capacity
// is not stored. Values are shared, so an evicted tile stays valid for requests still sending it.
class LruCache {
public:
    explicit LruCache(int64_t capacity_bytes) : capacity_(capacity_bytes) {}

    Blob get(const std::string& key);  // nullptr when absent; a hit moves the key to the front
    void put(const std::string& key, Blob value);

    int64_t bytes() const;
    int64_t entries() const;
    int64_t capacity() const { return capacity_; }
    int64_t evictions() const;

private:
    static int64_t cost(const std::string& key, const Blob& v) {
        return int64_t(key.size() + v->size());
    }
    void evict_locked();

    const int64_t capacity_;
    mutable std::mutex mutex_;
    std::list<std::pair<std::string, Blob>> order_;  // front: most recent
    std::unordered_map<std::string, std::list<std::pair<std::string, Blob>>::iterator> index_;
    int64_t bytes_ = 0, evictions_ = 0;
};

// A cache in front of a producer, with single-flight: get() returns the cached value, or waits
// for a producer already running for that key, or runs `produce` itself. A producer's exception
// reaches every waiter and nothing is cached.
class TileStore {
public:
    enum class Source { kCache, kShared, kProduced };
    explicit TileStore(int64_t capacity_bytes) : cache_(capacity_bytes) {}

    Blob get(const std::string& key, const std::function<std::string()>& produce,
             Source* source = nullptr);

    LruCache& cache() { return cache_; }
    const LruCache& cache() const { return cache_; }
    int64_t in_flight() const;

private:
    LruCache cache_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::shared_future<Blob>> in_flight_;
};

// Renders on a fixed set of worker threads (so LibTorch's allocations stay in a few threads'
// malloc arenas, whatever the number of connections), with a bounded queue: run() executes a job
// on a worker and waits for it, or refuses at once (the server answers 503) when every worker is
// busy and `queue` jobs already wait.
class RenderPool {
public:
    RenderPool(int workers, int queue);
    ~RenderPool();  // runs what is queued, then joins
    RenderPool(const RenderPool&) = delete;
    RenderPool& operator=(const RenderPool&) = delete;

    // False when refused; otherwise fn ran on a worker (its exception is rethrown here).
    bool run(const std::function<void()>& fn);
    int active() const;
    int waiting() const;

private:
    void work();

    const int workers_, queue_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    struct Job {
        std::function<void()> fn;
        std::promise<void> done;
    };
    std::list<Job> jobs_;
    int active_ = 0;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

// Work that may wait and may be dropped (refining previewed tiles): one thread runs the jobs,
// the most recently added first (the view a user looks at now), at most one per key at a time;
// beyond `capacity` waiting jobs the oldest is dropped. A job that throws counts as failed.
// The destructor drops what waits and joins after the running job, which can end early by
// polling stopping().
class BackgroundQueue {
public:
    explicit BackgroundQueue(int capacity);
    ~BackgroundQueue();
    BackgroundQueue(const BackgroundQueue&) = delete;
    BackgroundQueue& operator=(const BackgroundQueue&) = delete;

    // False when a job for `key` already waits or runs (nothing is added).
    bool add(const std::string& key, std::function<void()> fn);
    bool stopping() const { return stop_.load(); }
    int waiting() const;
    int64_t done() const, failed() const, dropped() const;

private:
    void work();

    const int capacity_;
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::list<std::pair<std::string, std::function<void()>>> jobs_;  // front: newest
    std::unordered_set<std::string> keys_;  // waiting or running
    int64_t done_ = 0, failed_ = 0, dropped_ = 0;
    std::thread thread_;
};

}  // namespace igan
