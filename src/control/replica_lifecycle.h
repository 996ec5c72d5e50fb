// The pure policy of one supervised replica: its state machine, when to probe, when to restart
// (CrashLoopBackOff-style exponential backoff) and when to escalate a stop to SIGKILL. It does no
// I/O and reads no clock: every call takes `now`, so tests drive it with plain time points.
// Not thread-safe; the Supervisor keeps one per replica under its own lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quiver::control {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using Duration = SteadyClock::duration;

// What the control plane reports for a replica.
//   Starting: process started (or adopted), not yet answering its readiness probe.
//   Ready:    answered the readiness probe.
//   Unready:  was ready, then failed `failure_threshold` probes in a row; still running.
//   Failed:   exited, could not be started, or missed its start timeout; a restart is scheduled.
//   Draining: asked to stop; SIGTERM sent, waiting for the exit (SIGKILL after the grace period).
//   Stopped:  stopped on request; terminal.
enum class ReplicaState { kStarting, kReady, kUnready, kFailed, kDraining, kStopped };

std::string_view ReplicaStateName(ReplicaState state);

// Kubernetes' CrashLoopBackOff shape: the n-th consecutive failure waits initial * 2^(n-1),
// capped at `max`; a replica that stayed ready for `reset_after` starts again from `initial`.
struct BackoffOptions {
  Duration initial = std::chrono::seconds(1);
  Duration max = std::chrono::minutes(5);
  Duration reset_after = std::chrono::minutes(10);
};

// The delay before restart number `consecutive_failures` (1 = first failure).
Duration BackoffDelay(const BackoffOptions& options, int consecutive_failures);

struct LifecycleOptions {
  // While Starting, probes begin at `probe_initial_interval` and double up to `probe_period`,
  // so a fast server is seen ready within tens of milliseconds without hammering a slow one.
  Duration probe_initial_interval = std::chrono::milliseconds(50);
  // For this long after a (re)start the interval stays at `probe_initial_interval` before it
  // starts doubling: a replica started on demand (scale from zero) is seen ready within one
  // short interval even when it takes seconds to load. 0: doubling from the first probe.
  Duration probe_fast_for = Duration::zero();
  // Interval between probes once the replica has been ready.
  Duration probe_period = std::chrono::seconds(1);
  // Consecutive failed probes that make a Ready replica Unready.
  int failure_threshold = 3;
  // Starting for longer than this: the process group is killed and the replica Failed.
  Duration start_timeout = std::chrono::minutes(2);
  BackoffOptions backoff;
};

// I/O the Supervisor must perform because time has come (returned by ReplicaLifecycle::Due).
enum class LifecycleAction {
  kProbe,  // run one readiness probe, then report it with OnProbeResult
  kSpawn,  // start the process (again), then report OnSpawned or OnSpawnFailed
  kKill,   // SIGKILL the process group (start timeout or stop grace period expired)
};

class ReplicaLifecycle {
 public:
  struct Transition {
    ReplicaState state;
    std::string reason;
  };

  explicit ReplicaLifecycle(LifecycleOptions options);

  // The process is running (spawned or adopted) as of `now`. Adoption is not a restart.
  void OnSpawned(TimePoint now, bool adopted);
  // Spawning failed (bad executable, cannot open the log, ...): Failed, restart after backoff.
  void OnSpawnFailed(TimePoint now, std::string reason);
  void OnProbeResult(TimePoint now, bool ok, std::string_view detail);
  // The process exited; `reason` describes how ("exited with code 1", "killed by signal 9").
  void OnExited(TimePoint now, std::string reason);
  // Begin draining. Returns true when the caller must send SIGTERM (a process is running);
  // otherwise the replica is Stopped at once.
  bool RequestStop(TimePoint now, Duration grace);

  // Actions due at `now`, in order. Also applies timeouts (start timeout → Failed).
  std::vector<LifecycleAction> Due(TimePoint now);
  // When Due next has something to do; nullopt when only an outside event can change anything.
  std::optional<TimePoint> NextDeadline() const;

  // State changes since the last call, oldest first.
  std::vector<Transition> TakeTransitions();

  ReplicaState state() const { return state_; }
  bool process_running() const { return process_running_; }
  // Restarts attempted (every kSpawn action; the first start and adoption do not count).
  int restart_count() const { return restart_count_; }
  int consecutive_failures() const { return consecutive_failures_; }
  // When the pending restart happens (only while Failed with no process).
  std::optional<TimePoint> restart_at() const { return restart_at_; }

 private:
  void SetState(ReplicaState state, std::string reason);
  // The process is gone or never started: schedule the restart by the backoff policy.
  void ScheduleRestart(TimePoint now);

  LifecycleOptions options_;
  ReplicaState state_ = ReplicaState::kStarting;
  bool process_running_ = false;
  bool probe_in_flight_ = false;
  int restart_count_ = 0;
  int consecutive_failures_ = 0;
  int consecutive_probe_failures_ = 0;
  Duration next_probe_interval_{};
  std::optional<TimePoint> ready_since_;
  std::optional<TimePoint> probe_at_;
  TimePoint spawned_at_{};
  std::optional<TimePoint> start_deadline_;
  std::optional<TimePoint> restart_at_;
  std::optional<TimePoint> kill_at_;
  bool kill_sent_ = false;
  std::vector<Transition> transitions_;
};

}  // namespace quiver::control
