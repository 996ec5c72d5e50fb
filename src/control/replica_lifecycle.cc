#include "control/replica_lifecycle.h"

#include <algorithm>
#include <utility>

namespace quiver::control {
namespace {

std::string SecondsText(Duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace

std::string_view ReplicaStateName(ReplicaState state) {
  switch (state) {
    case ReplicaState::kStarting:
      return "Starting";
    case ReplicaState::kReady:
      return "Ready";
    case ReplicaState::kUnready:
      return "Unready";
    case ReplicaState::kFailed:
      return "Failed";
    case ReplicaState::kDraining:
      return "Draining";
    case ReplicaState::kStopped:
      return "Stopped";
  }
  return "Unknown";
}

Duration BackoffDelay(const BackoffOptions& options, int consecutive_failures) {
  Duration delay = options.initial;
  for (int i = 1; i < consecutive_failures && delay < options.max; ++i) delay *= 2;
  return std::min(delay, options.max);
}

ReplicaLifecycle::ReplicaLifecycle(LifecycleOptions options) : options_(std::move(options)) {}

void ReplicaLifecycle::SetState(ReplicaState state, std::string reason) {
  if (state == state_ && !transitions_.empty() && transitions_.back().state == state) {
    transitions_.back().reason = std::move(reason);
    return;
  }
  state_ = state;
  transitions_.push_back({state, std::move(reason)});
}

void ReplicaLifecycle::OnSpawned(TimePoint now, bool adopted) {
  process_running_ = true;
  kill_sent_ = false;
  kill_at_.reset();
  restart_at_.reset();
  ready_since_.reset();
  probe_in_flight_ = false;
  consecutive_probe_failures_ = 0;
  next_probe_interval_ = options_.probe_initial_interval;
  spawned_at_ = now;
  // An adopted process has probably been serving all along: probe it at once.
  probe_at_ = adopted ? now : now + options_.probe_initial_interval;
  start_deadline_ = now + options_.start_timeout;
  // The state is reported even when it was already Starting (first start), so the control plane
  // sees every (re)start with its reason.
  state_ = ReplicaState::kStarting;
  transitions_.push_back(
      {ReplicaState::kStarting, adopted ? "adopted running process" : "process started"});
}

void ReplicaLifecycle::OnSpawnFailed(TimePoint now, std::string reason) {
  process_running_ = false;
  SetState(ReplicaState::kFailed, std::move(reason));
  ScheduleRestart(now);
}

void ReplicaLifecycle::OnProbeResult(TimePoint now, bool ok, std::string_view detail) {
  probe_in_flight_ = false;
  if (!process_running_) return;
  switch (state_) {
    case ReplicaState::kStarting:
      if (ok) {
        SetState(ReplicaState::kReady, "readiness probe succeeded");
        ready_since_ = now;
        start_deadline_.reset();
        probe_at_ = now + options_.probe_period;
      } else if (now - spawned_at_ < options_.probe_fast_for) {
        probe_at_ = now + options_.probe_initial_interval;
      } else {
        probe_at_ = now + next_probe_interval_;
        next_probe_interval_ = std::min(next_probe_interval_ * 2, options_.probe_period);
      }
      return;
    case ReplicaState::kReady:
      if (ok) {
        consecutive_probe_failures_ = 0;
      } else if (++consecutive_probe_failures_ >= options_.failure_threshold) {
        SetState(ReplicaState::kUnready, "readiness probe failed " +
                                             std::to_string(consecutive_probe_failures_) +
                                             " times in a row: " + std::string(detail));
        ready_since_.reset();
      }
      probe_at_ = now + options_.probe_period;
      return;
    case ReplicaState::kUnready:
      if (ok) {
        SetState(ReplicaState::kReady, "readiness probe succeeded again");
        consecutive_probe_failures_ = 0;
        ready_since_ = now;
      }
      probe_at_ = now + options_.probe_period;
      return;
    case ReplicaState::kFailed:
    case ReplicaState::kDraining:
    case ReplicaState::kStopped:
      return;
  }
}

void ReplicaLifecycle::OnExited(TimePoint now, std::string reason) {
  process_running_ = false;
  probe_in_flight_ = false;
  probe_at_.reset();
  start_deadline_.reset();
  kill_at_.reset();
  switch (state_) {
    case ReplicaState::kDraining:
      SetState(ReplicaState::kStopped, "stopped: " + reason);
      return;
    case ReplicaState::kStopped:
      return;
    case ReplicaState::kFailed:
      // Killed after its start timeout: the Failed transition was already reported.
      ScheduleRestart(now);
      return;
    case ReplicaState::kStarting:
    case ReplicaState::kReady:
    case ReplicaState::kUnready:
      SetState(ReplicaState::kFailed, std::move(reason));
      ScheduleRestart(now);
      return;
  }
}

bool ReplicaLifecycle::RequestStop(TimePoint now, Duration grace) {
  restart_at_.reset();
  probe_at_.reset();
  start_deadline_.reset();
  if (state_ == ReplicaState::kStopped) return false;
  if (state_ == ReplicaState::kDraining) {
    // A second, shorter stop request may hurry the SIGKILL but never delays it.
    if (!kill_sent_ && kill_at_ && now + grace < *kill_at_) kill_at_ = now + grace;
    return false;
  }
  if (!process_running_) {
    SetState(ReplicaState::kStopped, "stop requested");
    return false;
  }
  SetState(ReplicaState::kDraining,
           "stop requested: SIGTERM sent, grace period " + SecondsText(grace));
  kill_sent_ = false;
  kill_at_ = now + grace;
  return true;
}

void ReplicaLifecycle::ScheduleRestart(TimePoint now) {
  if (ready_since_ && now - *ready_since_ >= options_.backoff.reset_after) {
    consecutive_failures_ = 0;
  }
  ready_since_.reset();
  ++consecutive_failures_;
  const Duration delay = BackoffDelay(options_.backoff, consecutive_failures_);
  restart_at_ = now + delay;
  // Say when the restart comes, as Kubernetes' "back-off 20s restarting failed container".
  if (!transitions_.empty() && transitions_.back().state == ReplicaState::kFailed) {
    transitions_.back().reason += "; restarting in " + SecondsText(delay);
  }
}

std::vector<LifecycleAction> ReplicaLifecycle::Due(TimePoint now) {
  std::vector<LifecycleAction> actions;
  if (process_running_ && !kill_sent_) {
    if (state_ == ReplicaState::kStarting && start_deadline_ && now >= *start_deadline_) {
      SetState(ReplicaState::kFailed,
               "not ready within the start timeout of " + SecondsText(options_.start_timeout));
      start_deadline_.reset();
      probe_at_.reset();
      kill_sent_ = true;
      actions.push_back(LifecycleAction::kKill);
    } else if (state_ == ReplicaState::kDraining && kill_at_ && now >= *kill_at_) {
      SetState(ReplicaState::kDraining, "grace period over: SIGKILL sent");
      kill_sent_ = true;
      actions.push_back(LifecycleAction::kKill);
    }
  }
  const bool probing = state_ == ReplicaState::kStarting || state_ == ReplicaState::kReady ||
                       state_ == ReplicaState::kUnready;
  if (process_running_ && probing && !probe_in_flight_ && probe_at_ && now >= *probe_at_) {
    probe_in_flight_ = true;
    probe_at_.reset();
    actions.push_back(LifecycleAction::kProbe);
  }
  if (state_ == ReplicaState::kFailed && !process_running_ && restart_at_ && now >= *restart_at_) {
    restart_at_.reset();
    ++restart_count_;
    actions.push_back(LifecycleAction::kSpawn);
  }
  return actions;
}

std::optional<TimePoint> ReplicaLifecycle::NextDeadline() const {
  std::optional<TimePoint> next;
  auto consider = [&](const std::optional<TimePoint>& t) {
    if (t && (!next || *t < *next)) next = t;
  };
  if (process_running_ && !kill_sent_) {
    if (state_ == ReplicaState::kStarting) consider(start_deadline_);
    if (state_ == ReplicaState::kDraining) consider(kill_at_);
  }
  const bool probing = state_ == ReplicaState::kStarting || state_ == ReplicaState::kReady ||
                       state_ == ReplicaState::kUnready;
  if (process_running_ && probing && !probe_in_flight_) consider(probe_at_);
  if (state_ == ReplicaState::kFailed && !process_running_) consider(restart_at_);
  return next;
}

std::vector<ReplicaLifecycle::Transition> ReplicaLifecycle::TakeTransitions() {
  std::vector<Transition> out;
  out.swap(transitions_);
  return out;
}

}  // namespace quiver::control
