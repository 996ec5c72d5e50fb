#include "control/autoscaler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace quiver::control {

using Clock = std::chrono::steady_clock;

Autoscaler::Autoscaler(AutoscalerOptions options, Snapshot snapshot, OnChange on_change)
    : options_(std::move(options)),
      snapshot_(std::move(snapshot)),
      on_change_(std::move(on_change)) {}

Autoscaler::~Autoscaler() { Stop(); }

std::string Autoscaler::Key(const gateway::RevisionRef& ref) {
  return ref.namespace_name + "/" + ref.name + "/" +
         std::string(gateway::ComponentName(ref.component)) + "/" + ref.revision;
}

void Autoscaler::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Autoscaler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int Autoscaler::Replicas(const RevisionScaleInput& input) {
  std::lock_guard<std::mutex> lock(mu_);
  auto now = options_.clock();
  std::string key = Key(input.ref);
  Tracked& t = revisions_[key];
  t.ref = input.ref;
  t.routed = input.routed;
  t.current = input.current;
  t.ready = input.ready;
  if (!t.scaler || t.config_key != input.config_key) {
    t.config_key = input.config_key;
    t.scaler = std::make_unique<autoscale::RevisionAutoscaler>(input.config, now, input.ready);
    t.sampled = false;
    (void)DecideLocked(t, now);
  }
  return t.last.replicas;
}

void Autoscaler::Retain(const std::string& prefix, const std::set<std::string>& keep) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = revisions_.begin(); it != revisions_.end();) {
    if (it->first.compare(0, prefix.size(), prefix) == 0 && keep.count(it->first) == 0) {
      it = revisions_.erase(it);
    } else {
      ++it;
    }
  }
}

void Autoscaler::Demand(const gateway::RevisionRef& ref) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!demands_.insert(Key(ref)).second) return;  // already pending
  }
  wake_.notify_all();
}

std::optional<autoscale::ScaleDecision> Autoscaler::LastDecision(
    const gateway::RevisionRef& ref) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = revisions_.find(Key(ref));
  if (it == revisions_.end() || !it->second.scaler) return std::nullopt;
  return it->second.last;
}

bool Autoscaler::DecideLocked(Tracked& t, Clock::time_point now) {
  const int before = t.last.replicas;
  const bool was_panicking = t.last.panicking;
  const bool first = !t.sampled && t.last.reason.empty();
  t.last = t.scaler->Decide(now, t.current, t.ready, t.routed);
  // Panic entry and exit are logged even when the count stays: they explain what follows.
  if (t.last.replicas != before || first || t.last.panicking != was_panicking) {
    spdlog::info("autoscaler {}: {} replica(s) ({})", Key(t.ref), t.last.replicas, t.last.reason);
  }
  return t.last.replicas != before;
}

void Autoscaler::SampleOnce() {
  std::vector<gateway::RevisionStats> stats = snapshot_();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : stats) {
    auto it = revisions_.find(Key(s.revision));
    if (it == revisions_.end() || !it->second.scaler) continue;
    Tracked& t = it->second;
    if (t.sampled && s.at > t.sampled_at && s.request_seconds >= t.request_seconds) {
      double seconds = std::chrono::duration<double>(s.at - t.sampled_at).count();
      autoscale::Observation o;
      o.start = t.sampled_at;
      o.end = s.at;
      o.average_concurrency = (s.request_seconds - t.request_seconds) / seconds;
      o.requests = static_cast<double>(s.arrivals - t.arrivals);
      t.scaler->Record(o);
    }
    t.sampled = true;
    t.request_seconds = s.request_seconds;
    t.arrivals = s.arrivals;
    t.sampled_at = s.at;
  }
}

void Autoscaler::TickOnce() {
  std::vector<gateway::RevisionRef> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = options_.clock();
    for (auto& [key, t] : revisions_) {
      if (t.scaler && DecideLocked(t, now)) changed.push_back(t.ref);
    }
  }
  for (const auto& ref : changed) on_change_(ref);
}

void Autoscaler::HandleDemands() {
  std::set<std::string> demands;
  {
    std::lock_guard<std::mutex> lock(mu_);
    demands.swap(demands_);
  }
  if (demands.empty()) return;
  // What is waiting right now: Knative's activator reports concurrency at once for a revision
  // it holds requests for, and the autoscaler decides without waiting for its tick.
  std::vector<gateway::RevisionStats> stats = snapshot_();
  std::vector<gateway::RevisionRef> changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = options_.clock();
    for (const auto& key : demands) {
      auto it = revisions_.find(key);
      if (it == revisions_.end() || !it->second.scaler) continue;
      Tracked& t = it->second;
      double present = 1;
      for (const auto& s : stats) {
        if (Key(s.revision) == key) {
          present = std::max<double>(1, static_cast<double>(s.in_flight + s.queued));
        }
      }
      autoscale::Observation o;
      o.start = now - std::chrono::milliseconds(1);
      o.end = now;
      o.average_concurrency = present;
      o.requests = present;
      t.scaler->Record(o);
      if (DecideLocked(t, now)) changed.push_back(t.ref);
    }
  }
  for (const auto& ref : changed) on_change_(ref);
}

void Autoscaler::Run() {
  auto next_sample = options_.clock() + options_.sample_interval;
  auto next_tick = options_.clock() + options_.tick_interval;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    // The real clock paces the thread; an injected clock is for SampleOnce/TickOnce tests.
    auto wait_until = std::min(next_sample, next_tick);
    wake_.wait_until(lock, wait_until, [&] { return stop_ || !demands_.empty(); });
    if (stop_) break;
    lock.unlock();
    HandleDemands();
    auto now = options_.clock();
    if (now >= next_sample) {
      SampleOnce();
      next_sample = now + options_.sample_interval;
    }
    if (now >= next_tick) {
      TickOnce();
      next_tick = now + options_.tick_interval;
    }
    lock.lock();
  }
}

}  // namespace quiver::control
