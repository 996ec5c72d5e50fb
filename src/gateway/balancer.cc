#include "gateway/balancer.h"

#include <limits>

namespace quiver::gateway {

void EndpointState::AddIdleCallback(std::function<void()> cb) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    on_idle_.push_back(std::move(cb));
  }
  // The last request may have finished before the callback was registered.
  if (outstanding.load() == 0) FireIdleCallbacks();
}

void EndpointState::FireIdleCallbacks() {
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    callbacks.swap(on_idle_);
  }
  for (auto& cb : callbacks) cb();
}

void ConcurrencyMeter::Change(Clock::time_point now, int delta) {
  std::lock_guard<std::mutex> lock(mu_);
  if (now > last_) {
    request_seconds_ += static_cast<double>(present_) * std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }
  present_ += delta;
  if (delta > 0) ++arrivals_;
}

ConcurrencyMeter::Reading ConcurrencyMeter::Read(Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  Reading r{request_seconds_, arrivals_, present_};
  if (now > last_) {
    r.request_seconds += static_cast<double>(present_) * std::chrono::duration<double>(now - last_).count();
  }
  return r;
}

RevisionState::RevisionState(std::string key, const RevisionRoute& route)
    : key_(std::move(key)),
      container_concurrency_(route.container_concurrency),
      queue_limit_(route.queue_depth > 0 ? static_cast<size_t>(route.queue_depth)
                                         : 10 * static_cast<size_t>(route.container_concurrency)),
      scale_from_zero_(route.scale_from_zero),
      activator_limit_(static_cast<size_t>(route.activator_queue_depth)) {}

void RevisionState::SetEndpoints(std::shared_ptr<const EndpointList> endpoints,
                                 Clock::time_point now) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    endpoints_ = std::move(endpoints);
  }
  ServeWaiters(now);
}

bool RevisionState::HasUsableEndpointLocked() const {
  if (!endpoints_) return false;
  for (const auto& e : *endpoints_) {
    if (!e->draining.load(std::memory_order_relaxed)) return true;
  }
  return false;
}

bool RevisionState::HasUsableEndpoint() const {
  std::lock_guard<std::mutex> lock(mu_);
  return HasUsableEndpointLocked();
}

std::shared_ptr<const EndpointList> RevisionState::endpoints() const {
  std::lock_guard<std::mutex> lock(mu_);
  return endpoints_;
}

std::shared_ptr<EndpointState> RevisionState::Acquire(const EndpointList& endpoints,
                                                      const EndpointState* exclude,
                                                      Clock::time_point now) {
  const size_t n = endpoints.size();
  if (n == 0) return nullptr;
  const int64_t now_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  const int64_t limit = container_concurrency_;
  // Starting the scan at a rotating index makes ties go round robin.
  const size_t start = round_robin_.fetch_add(1, std::memory_order_relaxed) % n;
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  for (int attempt = 0; attempt < 4; ++attempt) {
    const std::shared_ptr<EndpointState>* best = nullptr;
    int64_t best_load = kNone;
    const std::shared_ptr<EndpointState>* avoided = nullptr;
    int64_t avoided_load = kNone;
    for (size_t i = 0; i < n; ++i) {
      const std::shared_ptr<EndpointState>& ep = endpoints[(start + i) % n];
      EndpointState* e = ep.get();
      if (e == exclude || e->draining.load(std::memory_order_relaxed)) continue;
      int64_t load = e->outstanding.load(std::memory_order_relaxed);
      if (limit > 0 && load >= limit) continue;
      if (e->avoid_until_ns.load(std::memory_order_relaxed) > now_ns) {
        if (load < avoided_load) {
          avoided = &ep;
          avoided_load = load;
        }
        continue;
      }
      if (load < best_load) {
        best = &ep;
        best_load = load;
      }
    }
    if (best == nullptr) best = avoided;
    if (best == nullptr) return nullptr;
    EndpointState* chosen = best->get();
    // DrainEndpoint may have marked it between the scan and the increment, and seen no request
    // on it: then the slot is given back (firing the idle callback) and another is sought.
    auto keep_unless_draining = [&]() -> bool {
      if (!chosen->draining.load()) return true;
      in_flight.fetch_sub(1, std::memory_order_relaxed);
      if (chosen->outstanding.fetch_sub(1) == 1) chosen->FireIdleCallbacks();
      return false;
    };
    if (limit == 0) {
      chosen->outstanding.fetch_add(1);
      in_flight.fetch_add(1, std::memory_order_relaxed);
      if (keep_unless_draining()) return *best;
      continue;
    }
    int64_t current = chosen->outstanding.load();
    bool taken = false;
    while (current < limit) {
      if (chosen->outstanding.compare_exchange_weak(current, current + 1)) {
        in_flight.fetch_add(1, std::memory_order_relaxed);
        taken = true;
        break;
      }
    }
    if (taken) {
      if (keep_unless_draining()) return *best;
      continue;
    }
    // Another thread took the last slot of that endpoint: look again.
  }
  return nullptr;
}

void RevisionState::Release(EndpointState* endpoint, Clock::time_point now) {
  int64_t before = endpoint->outstanding.fetch_sub(1);
  in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (before == 1 && endpoint->draining.load()) endpoint->FireIdleCallbacks();
  // Pairs with the fence in Enqueue: either this sees the waiter or Enqueue sees the slot.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (queued.load() > 0) ServeWaiters(now);
}

bool RevisionState::Enqueue(std::shared_ptr<SlotWaiter> waiter, Clock::time_point now) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (retired_) {
      lock.unlock();
      waiter->OnRejected(Unavailable("revision " + key_ + " was removed from the route table"));
      return true;
    }
    // A scale-from-zero revision queues up to the activator's depth while it has no usable
    // endpoint, and always when it has no containerConcurrency limit (no queue-proxy queue).
    const bool activator =
        scale_from_zero_ && (!HasUsableEndpointLocked() || container_concurrency_ == 0);
    if (waiters_.size() >= (activator ? activator_limit_ : queue_limit_)) {
      return false;
    }
    waiters_.push_back(std::move(waiter));
    queued.fetch_add(1);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  ServeWaiters(now);
  return true;
}

void RevisionState::ServeWaiters(Clock::time_point now) {
  for (;;) {
    std::shared_ptr<SlotWaiter> waiter;
    std::shared_ptr<EndpointState> endpoint;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiters_.empty() || !endpoints_) return;
      endpoint = Acquire(*endpoints_, nullptr, now);
      if (endpoint == nullptr) return;
      waiter = std::move(waiters_.front());
      waiters_.pop_front();
      queued.fetch_sub(1);
    }
    waiter->OnSlot(std::move(endpoint));
  }
}

void RevisionState::ExpireWaiters(Clock::time_point now) {
  if (queued.load(std::memory_order_relaxed) == 0) return;
  std::vector<std::shared_ptr<SlotWaiter>> expired;
  bool cold = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cold = !HasUsableEndpointLocked();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if ((*it)->deadline <= now) {
        expired.push_back(std::move(*it));
        it = waiters_.erase(it);
        queued.fetch_sub(1);
      } else {
        ++it;
      }
    }
  }
  for (auto& w : expired) {
    if (cold) {
      // Knative's activator answers 503 when a request's deadline passes before the revision
      // has a replica: the request never reached a model server.
      w->OnRejected(Unavailable("timed out waiting for revision " + key_ +
                                " to get a ready replica (scaling from zero)"));
      continue;
    }
    w->OnRejected(DeadlineExceeded("timed out waiting for a free replica of revision " + key_ +
                                   " (containerConcurrency " +
                                   std::to_string(container_concurrency_) + ")"));
  }
}

void RevisionState::RejectWaiters(const Status& status) {
  std::deque<std::shared_ptr<SlotWaiter>> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    waiters.swap(waiters_);
    queued.store(0);
  }
  for (auto& w : waiters) w->OnRejected(status);
}

void RevisionState::Retire() {
  std::deque<std::shared_ptr<SlotWaiter>> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retired_ = true;
    waiters.swap(waiters_);
    queued.store(0);
  }
  for (auto& w : waiters) {
    w->OnRejected(Unavailable("revision " + key_ + " was removed from the route table"));
  }
}

}  // namespace quiver::gateway
