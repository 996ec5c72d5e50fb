// Autoscaler: the control plane's side of Knative's KPA for `quiver up`. It keeps one
// autoscale::RevisionAutoscaler per revision the reconciler runs, feeds it the gateway's
// per-revision measurements every `sample_interval` (1 s, as the queue-proxy reports), asks it
// for a decision every `tick_interval` (2 s, as Knative's decider ticks) and at once when the
// gateway holds a request for a revision without a replica (the activator's poke), and tells
// the reconciler (`on_change`) when a revision's replica count should change.
// Thread-safety: every public method may be called from any thread; Demand is cheap (it only
// wakes the autoscaler's thread), so the gateway's I/O threads may call it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "autoscale/kpa.h"
#include "gateway/gateway.h"

namespace quiver::control {

struct AutoscalerOptions {
  std::chrono::milliseconds sample_interval{1000};
  std::chrono::milliseconds tick_interval{2000};
  std::function<std::chrono::steady_clock::time_point()> clock = [] {
    return std::chrono::steady_clock::now();
  };
};

// What the reconciler knows about a revision when it asks for its replica count.
struct RevisionScaleInput {
  gateway::RevisionRef ref;
  autoscale::KpaConfig config;
  std::string config_key;  // changes when the config does: the autoscaler starts afresh
  bool routed = false;     // has traffic (percent > 0 or a tag)
  int current = 0;         // replicas running or starting
  int ready = 0;           // replicas ready
};

class Autoscaler {
 public:
  using Snapshot = std::function<std::vector<gateway::RevisionStats>()>;
  using OnChange = std::function<void(const gateway::RevisionRef& ref)>;

  Autoscaler(AutoscalerOptions options, Snapshot snapshot, OnChange on_change);
  ~Autoscaler();
  Autoscaler(const Autoscaler&) = delete;
  Autoscaler& operator=(const Autoscaler&) = delete;

  // Starts the sampling/decision thread. Without Start, tests drive SampleOnce/TickOnce.
  void Start();
  void Stop();

  // The replica count to run for a revision now. The first call for a revision (or after its
  // config changed) creates its autoscaler and decides at once (initial scale, min/max).
  int Replicas(const RevisionScaleInput& input);
  // Among the revisions whose Key starts with `prefix`, forgets those not in `keep`.
  void Retain(const std::string& prefix, const std::set<std::string>& keep);
  // A request is waiting for a revision without a ready replica (gateway I/O thread).
  void Demand(const gateway::RevisionRef& ref);

  // The last decision of a revision, for status and logs; nullopt when not tracked.
  std::optional<autoscale::ScaleDecision> LastDecision(const gateway::RevisionRef& ref) const;

  // One sampling pass and one decision pass at `now` (the thread calls these).
  void SampleOnce();
  void TickOnce();

  static std::string Key(const gateway::RevisionRef& ref);

 private:
  struct Tracked {
    gateway::RevisionRef ref;
    std::string config_key;
    std::unique_ptr<autoscale::RevisionAutoscaler> scaler;
    bool routed = false;
    int current = 0;
    int ready = 0;
    autoscale::ScaleDecision last;
    // The previous sample of the gateway's integral, to difference.
    bool sampled = false;
    double request_seconds = 0;
    uint64_t arrivals = 0;
    std::chrono::steady_clock::time_point sampled_at;
  };

  void Run();
  // Decides for one revision (mu_ held); returns whether its replica count changed.
  bool DecideLocked(Tracked& t, std::chrono::steady_clock::time_point now);
  void HandleDemands();

  const AutoscalerOptions options_;
  const Snapshot snapshot_;
  const OnChange on_change_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                          // guarded by mu_
  std::map<std::string, Tracked> revisions_;   // guarded by mu_; by Key(ref)
  std::set<std::string> demands_;              // guarded by mu_
  std::thread thread_;
};

}  // namespace quiver::control
