// BatchQueue: the dynamic batcher's decisions (Triton's semantics) as a function of what is
// queued and the time it is given, so tests drive it with a fake clock.
// - A batch counts items (the first dimension of every input), not requests, and groups only
//   requests whose inputs agree in names, datatypes and every dimension after the first.
// - When an instance is free, a batch is dispatched if the maximum or a preferred size is
//   reached, or once the oldest request has waited max_queue_delay (at once when it is 0).
// - Priority levels (1 highest) each have a queue; a full level rejects at once; a request that
//   outlives its queue timeout is rejected, or with DELAY moved behind everything else.
// Not thread-safe: the scheduler guards it with its own mutex. Owns the queued jobs.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "batching/infer_job.h"

namespace quiver {

class BatchQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit BatchQueue(BatchingConfig config);

  // Queues `job` (taking it) or leaves it with the caller and returns why not: kInvalidArgument
  // for a request with no batch dimension or more items than max_batch_size, or a bad
  // "priority"/"timeout" parameter; kUnavailable when its priority level's queue is full.
  Status Enqueue(std::unique_ptr<InferJob>& job, Clock::time_point now);

  // Jobs whose queue timeout has passed and that must be rejected now.
  std::vector<std::unique_ptr<InferJob>> TakeExpired(Clock::time_point now);

  // The next batch to execute at `now`, oldest first; or empty, with `*wake_at` the time to look
  // again (Clock::time_point::max() when nothing is queued). `flush` dispatches without waiting
  // for the delay (used when stopping).
  std::vector<std::unique_ptr<InferJob>> NextBatch(Clock::time_point now,
                                                   Clock::time_point* wake_at,
                                                   bool flush = false);

  // Whether an instance that is waiting for the queue's next event (idle, or in a timed wait
  // until `waiting_until`, Clock::time_point::max() for an untimed wait) must be woken after
  // the Enqueue that has just succeeded: the queue was empty before it, or a batch can now leave
  // by size (or at once, with no delay), or the new request's timeout falls before that wait
  // ends. Otherwise the wait the instance already holds is still right, and waking it would
  // cost a context switch per request for nothing (Triton wakes its batcher the same way).
  bool EnqueueNeedsWake(Clock::time_point waiting_until) const;

  size_t size() const;
  bool empty() const { return size() == 0; }

 private:
  struct Entry {
    std::unique_ptr<InferJob> job;
    int64_t items = 0;
    std::string key;  // inputs' names, datatypes and non-batch dimensions
    Clock::time_point enqueued;
    Clock::time_point deadline = Clock::time_point::max();
  };

  const BatchingConfig config_;
  std::vector<std::deque<Entry>> levels_;  // index 0 is priority level 1
  int64_t queued_items_ = 0;               // items of every queued request, all keys
  Clock::time_point last_deadline_ = Clock::time_point::max();  // of the last Enqueue
};

// The key under which requests may share a batch, and the request's item count.
Status BatchKey(const InferRequest& request, std::string* key, int64_t* items);

}  // namespace quiver
