// Endpoint choice inside one revision: least outstanding requests (ties by round robin), the
// containerConcurrency limit per endpoint, and the bounded FIFO queue of requests waiting for a
// free slot. The fast path is atomics only; the queue's mutex is taken only when every endpoint
// is at its limit (or requests are already waiting). States outlive route-table swaps: the
// gateway keeps one RevisionState per revision and one EndpointState per replica.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "gateway/route_table.h"
#include "http/client.h"

namespace quiver::gateway {

using Clock = std::chrono::steady_clock;

struct EndpointState {
  explicit EndpointState(const Endpoint& e)
      : endpoint(e), backend(http::Backend::Make(e.host, e.port)) {}

  const Endpoint endpoint;
  const http::Backend backend;
  std::atomic<int64_t> outstanding{0};
  std::atomic<bool> draining{false};
  // After a connect failure the endpoint is avoided until then (unless nothing else is left).
  std::atomic<int64_t> avoid_until_ns{0};

  // Drain: `cb` runs once `outstanding` is 0 (at once when it already is), on the thread that
  // released the last request.
  void AddIdleCallback(std::function<void()> cb);
  void FireIdleCallbacks();

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> on_idle_;  // guarded by mu_
};

using EndpointList = std::vector<std::shared_ptr<EndpointState>>;

// The autoscaler's measurement of one revision: requests present (queued or in flight) over
// time, integrated exactly at every arrival and departure (Knative's queue-proxy reports the
// same time-weighted concurrency), and the arrivals. A small mutex: two uncontended locks per
// request, and the four numbers must change together for a reading to be consistent.
class ConcurrencyMeter {
 public:
  void Arrive(Clock::time_point now) { Change(now, +1); }
  void Depart(Clock::time_point now) { Change(now, -1); }

  struct Reading {
    double request_seconds = 0;  // ∫ requests present dt since the meter began
    uint64_t arrivals = 0;
    int64_t present = 0;
  };
  Reading Read(Clock::time_point now) const;

 private:
  void Change(Clock::time_point now, int delta);

  mutable std::mutex mu_;
  int64_t present_ = 0;                // guarded by mu_
  uint64_t arrivals_ = 0;              // guarded by mu_
  double request_seconds_ = 0;         // guarded by mu_: up to last_
  Clock::time_point last_{};           // guarded by mu_
};

// A request waiting for an endpoint slot. Exactly one of the two is called, once, on the
// thread that freed the slot or expired the request (never with the queue's mutex held).
class SlotWaiter {
 public:
  virtual ~SlotWaiter() = default;
  // The slot is already taken for it; give it back with RevisionState::Release.
  virtual void OnSlot(std::shared_ptr<EndpointState> endpoint) = 0;
  virtual void OnRejected(Status status) = 0;
  Clock::time_point deadline;
};

class RevisionState {
 public:
  RevisionState(std::string key, const RevisionRoute& route);

  const std::string& key() const { return key_; }  // "namespace/name/component/revision"

  // Replaces the endpoints (route-table swap) and serves waiters that now fit.
  void SetEndpoints(std::shared_ptr<const EndpointList> endpoints, Clock::time_point now);
  std::shared_ptr<const EndpointList> endpoints() const;
  // An endpoint that is not draining (it may be at its limit).
  bool HasUsableEndpoint() const;

  // Takes a slot on the least-loaded usable endpoint of `endpoints`, skipping `exclude`.
  // Returns null when every endpoint is at its containerConcurrency limit, draining or
  // excluded (endpoints avoided after a failure are used only when nothing else is left).
  std::shared_ptr<EndpointState> Acquire(const EndpointList& endpoints,
                                         const EndpointState* exclude, Clock::time_point now);
  // Gives the slot back; serves the oldest waiter when one is queued.
  void Release(EndpointState* endpoint, Clock::time_point now);

  // Queues `waiter` (FIFO). Returns false when the queue is full (the caller answers 503): the
  // bound is the route's queue depth, or its activator depth while there is no endpoint.
  // The waiter may be served (or rejected, for a retired revision) before Enqueue returns.
  bool Enqueue(std::shared_ptr<SlotWaiter> waiter, Clock::time_point now);
  // Rejects waiters whose deadline is at or before `now`: kDeadlineExceeded (504), or
  // kUnavailable (503, as Knative's activator) when the revision has no endpoint at all.
  void ExpireWaiters(Clock::time_point now);
  // The revision left the route table: waiters are rejected (kUnavailable).
  void Retire();
  // Rejects every waiter with `status` (the gateway is shutting down).
  void RejectWaiters(const Status& status);

  int container_concurrency() const { return container_concurrency_; }
  size_t queue_limit() const { return queue_limit_; }
  bool scale_from_zero() const { return scale_from_zero_; }
  size_t activator_limit() const { return activator_limit_; }

  // Metrics for the autoscaler: requests holding a slot and waiting for one. The gateway
  // counts `completed` when it answers (retries are not counted twice).
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> queued{0};
  std::atomic<uint64_t> completed{0};
  ConcurrencyMeter meter;

 private:
  void ServeWaiters(Clock::time_point now);
  bool HasUsableEndpointLocked() const;

  const std::string key_;
  const int container_concurrency_;
  const size_t queue_limit_;
  const bool scale_from_zero_;
  const size_t activator_limit_;
  std::atomic<uint64_t> round_robin_{0};
  mutable std::mutex mu_;
  std::shared_ptr<const EndpointList> endpoints_;    // guarded by mu_ (the queue's view)
  std::deque<std::shared_ptr<SlotWaiter>> waiters_;  // guarded by mu_
  bool retired_ = false;                             // guarded by mu_
};

}  // namespace quiver::gateway
