#include "serve/tile_cache.h"

#include <algorithm>

namespace igan {

Blob LruCache::get(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
}

void LruCache::put(const std::string& key, Blob value) {
    if (!value) return;
    const int64_t c = cost(key, value);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = index_.find(key);
    if (it != index_.end()) {
        bytes_ -= cost(key, it->second->second);
        order_.erase(it->second);
        index_.erase(it);
    }
    if (c > capacity_) return;
    order_.emplace_front(key, std::move(value));
    index_[key] = order_.begin();
    bytes_ += c;
    evict_locked();
}

void LruCache::evict_locked() {
    while (bytes_ > capacity_ && !order_.empty()) {
        auto& last = order_.back();
        bytes_ -= cost(last.first, last.second);
        index_.erase(last.first);
        order_.pop_back();
        ++evictions_;
    }
}

int64_t LruCache::bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return bytes_;
}

int64_t LruCache::entries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return int64_t(index_.size());
}

int64_t LruCache::evictions() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return evictions_;
}

Blob TileStore::get(const std::string& key, const std::function<std::string()>& produce,
                    Source* source) {
    std::promise<Blob> promise;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        if (auto hit = cache_.get(key)) {
            if (source) *source = Source::kCache;
            return hit;
        }
        auto it = in_flight_.find(key);
        if (it != in_flight_.end()) {
            auto shared = it->second;
            lock.unlock();
            if (source) *source = Source::kShared;
            return shared.get();  // rethrows the producer's exception
        }
        in_flight_.emplace(key, promise.get_future().share());
    }
    if (source) *source = Source::kProduced;
    Blob value;
    try {
        value = std::make_shared<const std::string>(produce());
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        in_flight_.erase(key);
        promise.set_exception(std::current_exception());
        throw;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    cache_.put(key, value);
    in_flight_.erase(key);
    promise.set_value(value);
    return value;
}

int64_t TileStore::in_flight() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return int64_t(in_flight_.size());
}

RenderPool::RenderPool(int workers, int queue) : workers_(workers), queue_(queue) {
    for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
}

RenderPool::~RenderPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
}

bool RenderPool::run(const std::function<void()>& fn) {
    std::future<void> done;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_ || active_ + int64_t(jobs_.size()) >= int64_t(workers_) + queue_) return false;
        jobs_.push_back({fn, {}});
        done = jobs_.back().done.get_future();
    }
    cv_.notify_one();
    done.get();
    return true;
}

void RenderPool::work() {
    while (true) {
        Job job;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
            ++active_;
        }
        std::exception_ptr error;
        try {
            job.fn();
        } catch (...) {
            error = std::current_exception();
        }
        // Idle before the caller learns the job is done, so its next run() finds the worker free.
        {
            std::lock_guard<std::mutex> lock(mutex_);
            --active_;
        }
        if (error)
            job.done.set_exception(error);
        else
            job.done.set_value();
    }
}

int RenderPool::active() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return active_;
}

int RenderPool::waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return int(jobs_.size());
}

BackgroundQueue::BackgroundQueue(int capacity)
    : capacity_(std::max(1, capacity)), thread_([this] { work(); }) {}

BackgroundQueue::~BackgroundQueue() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        dropped_ += int64_t(jobs_.size());
        jobs_.clear();
    }
    cv_.notify_all();
    thread_.join();
}

bool BackgroundQueue::add(const std::string& key, std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stop_ || keys_.count(key)) return false;
        keys_.insert(key);
        jobs_.emplace_front(key, std::move(fn));
        if (int(jobs_.size()) > capacity_) {
            keys_.erase(jobs_.back().first);
            jobs_.pop_back();
            ++dropped_;
        }
    }
    cv_.notify_one();
    return true;
}

void BackgroundQueue::work() {
    while (true) {
        std::pair<std::string, std::function<void()>> job;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
            if (stop_) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        bool ok = true;
        try {
            job.second();
        } catch (...) {
            ok = false;
        }
        std::lock_guard<std::mutex> lock(mutex_);
        keys_.erase(job.first);
        ++(ok ? done_ : failed_);
    }
}

int BackgroundQueue::waiting() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return int(jobs_.size());
}

int64_t BackgroundQueue::done() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
}

int64_t BackgroundQueue::failed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return failed_;
}

int64_t BackgroundQueue::dropped() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return dropped_;
}

}  // namespace igan
