// RevisionAutoscaler: Knative's decider (scaling/autoscaler.go) and the PA reconciler's scale
// rules (kpa/scaler.go) for one revision, with time passed in.

#include "autoscale/kpa.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <utility>

#include "autoscale/duration.h"
#include "autoscale/metric_window.h"

namespace quiver::autoscale {
namespace {

// Knative scales a revision that never became ready to zero after its progress deadline
// (600 s) plus a 10 s buffer (kpa/scaler.go activationTimeout); here the same bound lifts
// the initial-scale floor of a revision that never reached its initial scale.
constexpr Millis kActivationTimeout{610'000};

// No revision needs more replicas than this; it keeps double → int conversions defined.
constexpr double kReplicaCeiling = 1'000'000;

// ceil(value / target), tolerant of the last bit of floating-point noise.
double PodsFor(double value, double target) {
  if (value <= 0) return 0;
  return std::ceil(value / target - 1e-9);
}

int ToCount(double v) { return static_cast<int>(std::clamp(v, 0.0, kReplicaCeiling)); }

std::string Num(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

std::string Dur(TimePoint::duration d) {
  return FormatDuration(std::chrono::duration_cast<Millis>(d));
}

}  // namespace

class RevisionAutoscaler::Impl {
 public:
  Impl(KpaConfig config, TimePoint now, int ready_replicas)
      : config_(std::move(config)),
        stable_(config_.stable_window),
        panic_(config_.panic_window),
        created_(now),
        max_panic_pods_(std::max(0, ready_replicas)) {
    // Knative starts a new decider in panic mode when more than one replica is ready: its
    // metric history is gone, and panic mode forbids scaling down until a stable window of
    // new data has been seen.
    if (ready_replicas > 1) panic_time_ = now;
    if (ready_replicas > 0) active_since_ = now;
  }

  void Record(const Observation& o) {
    stable_.Record(o);
    panic_.Record(o);
    if (o.average_concurrency > 0 || o.requests > 0) demand_pending_ = true;
  }

  ScaleDecision Decide(TimePoint now, int current_replicas, int ready_replicas, bool routed);

  KpaConfig config_;

 private:
  int RunDecider(TimePoint now, int ready, bool routed, ScaleDecision& d, std::string& why);

  MetricWindow stable_;
  MetricWindow panic_;
  TimePoint created_;
  std::optional<TimePoint> panic_time_;
  int max_panic_pods_;
  std::deque<std::pair<TimePoint, int>> delay_window_;  // (time, desired) for scale-down-delay
  bool demand_pending_ = false;            // traffic recorded since the previous Decide
  bool initialized_ = false;               // the initial scale has been reached once
  std::optional<TimePoint> idle_since_;    // start of the run of decisions wanting 0
  std::optional<TimePoint> active_since_;  // since when at least one replica is ready
};

int RevisionAutoscaler::Impl::RunDecider(TimePoint now, int ready, bool routed, ScaleDecision& d,
                                         std::string& why) {
  const KpaConfig& c = config_;
  const MetricWindow::Averages stable = stable_.Average(now);
  const MetricWindow::Averages panic = panic_.Average(now);
  const bool rps = c.metric == Metric::kRps;
  const char* metric_name = rps ? "rps" : "concurrency";
  d.stable_value = rps ? stable.rps : stable.concurrency;
  d.panic_value = rps ? panic.rps : panic.concurrency;

  // Rate limits count at least one replica, so a revision at zero can scale up at all.
  const double ready_pods = std::max(1, ready);
  const double max_up = std::ceil(c.max_scale_up_rate * ready_pods);
  const double max_down = routed ? std::floor(ready_pods / c.max_scale_down_rate) : 0;

  double dspc = PodsFor(d.stable_value, c.target);
  const double dppc = PodsFor(d.panic_value, c.target);
  // Knative's Poke: traffic for a revision the decider would leave at zero asks for a replica
  // at once, whatever the averages say (the activator's first stat counts as concurrency 1).
  const bool poked = demand_pending_ && dspc < 1;
  demand_pending_ = false;
  if (poked) dspc = 1;

  int desired_stable = ToCount(std::min(std::max(dspc, max_down), max_up));
  int desired_panic = ToCount(std::min(std::max(dppc, max_down), max_up));
  if (c.activation_scale > 1) {
    if (dspc > 0) desired_stable = std::max(desired_stable, c.activation_scale);
    if (dppc > 0) desired_panic = std::max(desired_panic, c.activation_scale);
  }

  const bool over_threshold = dppc / ready_pods >= c.panic_threshold;
  if (over_threshold) {
    panic_time_ = now;  // entering, or extending: panic lasts a stable window past the burst
  } else if (panic_time_ && *panic_time_ + c.stable_window < now) {
    panic_time_.reset();
    max_panic_pods_ = 0;
  }

  int desired = desired_stable;
  if (poked) {
    why = "traffic at zero replicas → 1";
  } else {
    why = "stable " + std::string(metric_name) + " " + Num(d.stable_value) + " / target " +
          Num(c.target) + " → " + Num(dspc);
  }
  if (dspc > max_up) {
    why += ", max-scale-up-rate " + Num(c.max_scale_up_rate) + " × " + Num(ready_pods) +
           " ready → " + Num(max_up);
  } else if (dspc < max_down) {
    why += ", max-scale-down-rate " + Num(c.max_scale_down_rate) + " from " + Num(ready_pods) +
           " ready → " + Num(max_down);
  }
  if (desired_stable > std::max(dspc, max_down)) {
    why += ", activation-scale " + std::to_string(c.activation_scale);
  }
  if (panic_time_) {
    // Panic never scales down: it only raises the high-water mark until it ends.
    desired = std::max({desired, desired_panic, max_panic_pods_});
    max_panic_pods_ = desired;
    d.panicking = true;
    if (over_threshold) {
      why = "panic: " + std::string(metric_name) + " " + Num(d.panic_value) + " over " +
            FormatDuration(c.panic_window) + " needs " + Num(dppc) +
            " >= " + Num(c.panic_threshold) + " × " + std::to_string(ready) + " ready → " +
            std::to_string(desired);
      if (dppc > max_up) why += " (max-scale-up-rate " + Num(c.max_scale_up_rate) + ")";
    } else {
      why = "panic for " + Dur(*panic_time_ + c.stable_window - now) + " more, no scale-down → " +
            std::to_string(desired) + "; " + why;
    }
  }

  if (c.scale_down_delay > Millis(0)) {
    // The maximum of the decisions over the trailing delay: scale-down happens only after
    // the lower value has held for the whole delay.
    while (!delay_window_.empty() && delay_window_.front().first + c.scale_down_delay <= now) {
      delay_window_.pop_front();
    }
    while (!delay_window_.empty() && delay_window_.back().second <= desired) {
      delay_window_.pop_back();  // dominated: older and not larger
    }
    delay_window_.emplace_back(now, desired);
    const int delayed = delay_window_.front().second;
    if (routed && delayed > desired) {
      why += "; scale-down-delay " + FormatDuration(c.scale_down_delay) + " holds " +
             std::to_string(delayed);
      desired = delayed;
    }
  }

  if (c.target_burst_capacity == 0) {
    d.excess_burst_capacity = 0;
  } else if (c.target_burst_capacity < 0) {
    d.excess_burst_capacity = -1;
  } else {
    d.excess_burst_capacity =
        std::floor(ready * c.total_target - c.target_burst_capacity - d.panic_value);
  }
  return desired;
}

ScaleDecision RevisionAutoscaler::Impl::Decide(TimePoint now, int current_replicas,
                                               int ready_replicas, bool routed) {
  const KpaConfig& c = config_;
  const int current = std::max(0, current_replicas);
  const int ready = std::max(0, ready_replicas);
  ScaleDecision d;
  std::string why;
  const int want = RunDecider(now, ready, routed, d, why);
  const std::string decider_why = why;
  d.decider_wants = want;

  if (ready > 0) {
    if (!active_since_) active_since_ = now;
  } else {
    active_since_.reset();
  }
  if (want > 0) {
    idle_since_.reset();
  } else if (!idle_since_) {
    idle_since_ = now;
  }

  // Bounds (kpa/scaler.go): min-scale only while routed; the initial scale as a floor until
  // it has been reached once, routed or not, as Knative creates the Deployment with it.
  int lower = routed ? c.min_scale : 0;
  bool initial_floor = false;
  if (!initialized_) {
    if (ready >= std::max(lower, c.initial_scale)) {
      initialized_ = true;
    } else if (now - created_ >= kActivationTimeout) {
      initialized_ = true;
      why += "; initial-scale " + std::to_string(c.initial_scale) + " not reached in " +
             FormatDuration(kActivationTimeout) + ", no longer held";
    } else if (c.initial_scale > lower) {
      lower = c.initial_scale;
      initial_floor = true;
    }
  }
  int replicas = want;
  if (replicas < lower) {
    replicas = lower;
    why += initial_floor ? "; initial-scale " + std::to_string(lower) + " not reached yet"
                         : "; min-scale " + std::to_string(lower);
  }
  if (c.max_scale > 0 && replicas > c.max_scale) {
    replicas = c.max_scale;
    why += "; max-scale " + std::to_string(c.max_scale);
  }

  // Scale to zero (kpa/scaler.go handleScaleToZero), adapted to `quiver up`, whose gateway
  // is an activator always in the path: there is nothing to probe, and no proxy mode to wait
  // for. Knative's PA goes Inactive once the decider wants 0 and it has been Active for a
  // stable window, and then to zero after max(grace, retention); here the grace is counted
  // from the first decision that wanted 0, and the last replica is kept until both hold.
  // An unrouted revision goes to zero at once: nothing can reach it any more, and the
  // supervisor drains what is in flight.
  if (!routed && !initial_floor) {
    replicas = 0;
    why = decider_why + "; not routed: scale to zero";
  } else if (replicas == 0) {
    if (!c.enable_scale_to_zero) {
      replicas = 1;
      why += "; scale to zero disabled: keep 1";
    } else if (current == 0) {
      why += "; no traffic: stay at zero";
    } else {
      const Millis hold = std::max(c.scale_to_zero_grace, c.scale_to_zero_retention);
      const auto idle_for = now - *idle_since_;
      const bool active_long_enough = !active_since_ || now - *active_since_ >= c.stable_window;
      if (idle_for < hold) {
        replicas = 1;
        why += "; no traffic for " + Dur(idle_for) + " of " + FormatDuration(hold) +
               " before scaling to zero: keep 1";
      } else if (!active_long_enough) {
        replicas = 1;
        why += "; ready for only " + Dur(now - *active_since_) + " of the " +
               FormatDuration(c.stable_window) + " stable window: keep 1";
      } else {
        why += "; no traffic for " + Dur(idle_for) + ": scale to zero";
      }
    }
  }

  d.replicas = replicas;
  d.reason =
      "replicas " + std::to_string(replicas) + " (was " + std::to_string(current) + "): " + why;
  return d;
}

RevisionAutoscaler::RevisionAutoscaler(KpaConfig config, TimePoint now, int ready_replicas)
    : impl_(std::make_shared<Impl>(std::move(config), now, ready_replicas)) {}

const KpaConfig& RevisionAutoscaler::config() const { return impl_->config_; }

void RevisionAutoscaler::Record(const Observation& observation) { impl_->Record(observation); }

ScaleDecision RevisionAutoscaler::Decide(TimePoint now, int current_replicas, int ready_replicas,
                                         bool routed) {
  return impl_->Decide(now, current_replicas, ready_replicas, routed);
}

}  // namespace quiver::autoscale
