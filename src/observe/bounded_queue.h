// BoundedQueue: hands items from request threads to background delivery threads without ever
// blocking the producer. A push beyond the item or byte limit is refused and counted as a drop,
// so a slow consumer costs producers nothing but the drop. Thread-safe; any number of producers
// and consumers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

namespace quiver::observe {

template <typename T>
class BoundedQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // max_items > 0; max_bytes 0 means no byte limit (then weights are ignored).
  explicit BoundedQueue(size_t max_items, size_t max_bytes = 0)
      : max_items_(max_items), max_bytes_(max_bytes) {}

  // Adds `item` (of `bytes`, counted against max_bytes) unless the queue is full or closed;
  // never blocks. A refused item is counted in dropped(). An item larger than max_bytes is
  // still taken by an empty queue, so that no size is refused forever.
  bool TryPush(T item, size_t bytes = 0) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_ || items_.size() >= max_items_ ||
          (max_bytes_ > 0 && bytes_ + bytes > max_bytes_ && !items_.empty())) {
        ++dropped_;
        return false;
      }
      bytes_ += bytes;
      items_.push_back(Entry{std::move(item), bytes});
    }
    cv_.notify_one();
    return true;
  }

  // Waits until `min_items` are queued, `until` passes, or the queue is closed, then moves up to
  // `max_items` into `out` (appended). Returns how many were taken; 0 once closed and empty.
  size_t PopBatch(std::vector<T>* out, size_t min_items, size_t max_items,
                  Clock::time_point until) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_until(lock, until, [&] { return closed_ || items_.size() >= min_items; });
    size_t n = std::min(max_items, items_.size());
    for (size_t i = 0; i < n; ++i) {
      bytes_ -= items_.front().bytes;
      out->push_back(std::move(items_.front().item));
      items_.pop_front();
    }
    return n;
  }

  // Refuses further pushes and wakes every waiting consumer. Queued items stay to be popped.
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  // Waits until the queue is closed or `until` passes; true when closed. For consumers that
  // back off between retries but must notice a shutdown.
  bool WaitClosed(Clock::time_point until) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, until, [&] { return closed_; });
  }

  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.size();
  }
  // Items refused so far (full or closed), plus those added with AddDropped.
  uint64_t dropped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dropped_;
  }
  // For consumers that give items up (e.g. undelivered at shutdown), so one counter holds every
  // loss.
  void AddDropped(uint64_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    dropped_ += n;
  }

 private:
  struct Entry {
    T item;
    size_t bytes;
  };
  const size_t max_items_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> items_;  // guarded by mu_
  size_t bytes_ = 0;         // guarded by mu_
  bool closed_ = false;      // guarded by mu_
  uint64_t dropped_ = 0;     // guarded by mu_
};

}  // namespace quiver::observe
