// Knative Pod Autoscaler (KPA) semantics for one revision of `quiver up`: the settings resolved
// from a component's fields and `autoscaling.knative.dev/*` annotations, the per-second metric
// buckets, the decider (stable and panic windows, scale rates, scale-down delay) and the
// replica count to run (bounds, initial scale, scale to zero after the grace period).
// Pure: time comes in as arguments, nothing here reads a clock, sleeps or starts threads.
// Thread-compatible: one RevisionAutoscaler per revision, called from one thread at a time.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

namespace quiver::autoscale {

using TimePoint = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

enum class Metric { kConcurrency, kRps };

// One revision's settings (Knative's config-autoscaler keys, per revision). Field defaults are
// Knative's defaults.
struct KpaConfig {
  Metric metric = Metric::kConcurrency;
  // Per-replica target before utilisation: containerConcurrency when > 0, else 100 for
  // concurrency (200 for rps); the `target` annotation (or scaleTarget) overrides it, capped at
  // containerConcurrency for the concurrency metric.
  double total_target = 100;
  double target_utilization = 0.7;  // target-utilization-percentage / 100
  // The soft per-replica target the decider divides by: max(0.01, total_target × utilization).
  double target = 70;
  int container_concurrency = 0;  // the hard limit (enforced by the gateway); 0: none
  Millis stable_window{60'000};
  Millis panic_window{6'000};  // round(stable × panic-window-percentage / 100), >= 1 s
  double panic_threshold = 2.0;  // panic-threshold-percentage / 100
  double max_scale_up_rate = 1000;
  double max_scale_down_rate = 2;
  int min_scale = 0;  // minReplicas; applies while the revision is routed
  int max_scale = 0;  // maxReplicas; 0: unbounded
  int initial_scale = 1;
  int activation_scale = 1;
  Millis scale_down_delay{0};
  Millis scale_to_zero_grace{30'000};      // global in Knative: a `quiver up` flag
  Millis scale_to_zero_retention{0};       // scale-to-zero-pod-retention-period
  double target_burst_capacity = 211;      // -1: activator always in the path
  bool enable_scale_to_zero = true;        // global in Knative
};

// What a revision's autoscaler is made from: the component's fields and the annotations (the
// InferenceService's metadata annotations merged with the component's, the component's
// winning). `defaults` carries the cluster-wide values (`quiver up` flags).
struct ScalingInputs {
  int min_replicas = 1;
  std::optional<int> max_replicas;  // unset or 0: unbounded
  std::optional<int> scale_target;
  std::string scale_metric = "concurrency";  // concurrency | rps (cpu, memory: rejected)
  int container_concurrency = 0;
  std::map<std::string, std::string> annotations;
};

// Resolves and validates. Errors are kInvalidArgument naming the field or the full annotation
// key, the expected form and the value given, e.g.
//   "annotation autoscaling.knative.dev/window: expected a duration between 6s and 1h, got 2s".
// Recognised keys (prefix autoscaling.knative.dev/): target, target-utilization-percentage,
// metric, window, panic-window-percentage, panic-threshold-percentage, min-scale, max-scale,
// initial-scale, activation-scale, scale-down-delay, scale-to-zero-pod-retention-period,
// target-burst-capacity, class (only kpa.autoscaling.knative.dev accepted). Others under the
// prefix are errors naming the key. Fields (minReplicas, maxReplicas, scaleTarget,
// scaleMetric) win over the matching annotation only when the annotation is absent.
StatusOr<KpaConfig> ResolveConfig(const ScalingInputs& inputs, const KpaConfig& defaults = {});

// One measurement of a revision at the gateway: the time-weighted average number of requests in
// flight or queued over [start, end), and the number of requests that arrived in it.
struct Observation {
  TimePoint start;
  TimePoint end;
  double average_concurrency = 0;
  double requests = 0;
};

struct ScaleDecision {
  int replicas = 0;        // replicas to run now, after bounds and scale-to-zero rules
  int decider_wants = 0;   // the decider's value before bounds and grace
  bool panicking = false;
  double stable_value = 0;  // stable-window average of the metric (total over replicas)
  double panic_value = 0;   // panic-window average
  double excess_burst_capacity = 0;
  std::string reason;       // one line for logs and events, e.g. "panic: 3.2 >= 2.0 × 1 ready"
};

class RevisionAutoscaler {
 public:
  // `ready_replicas` at creation: more than one starts the decider in panic mode (Knative's rule
  // for a restarted autoscaler that lost its history).
  RevisionAutoscaler(KpaConfig config, TimePoint now, int ready_replicas);

  const KpaConfig& config() const;

  // Adds a measurement into 1-second buckets (an observation spanning several buckets is spread
  // over them by time).
  void Record(const Observation& observation);

  // The decision at `now` (the control plane calls it every 2 s, and at once when a request
  // arrives for a revision at zero). `routed`: the revision has traffic (percent > 0 or a tag);
  // min-scale applies only then, and an unrouted revision goes to zero without the grace period.
  // `current_replicas`: replicas running or starting; `ready_replicas`: those ready.
  ScaleDecision Decide(TimePoint now, int current_replicas, int ready_replicas, bool routed);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace quiver::autoscale
