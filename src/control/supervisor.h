// The process supervisor of `quiver up`: every replica of a revision is a child process that it
// starts, probes for readiness, restarts with CrashLoopBackOff-style backoff, drains on stop,
// and adopts again after the daemon itself was killed and restarted. One thread runs an event
// loop (poll over pidfds and probe sockets, the nearest replica deadline as its timeout); there
// is no thread per replica. Public methods are thread-safe and, but for StopAllAndWait, never
// wait for a replica; the event callback runs on the supervisor's thread, one event at a time,
// in order. What to do when (probe, restart, kill) is decided by ReplicaLifecycle, a pure policy
// tested with explicit time points; this class performs the I/O on the steady clock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "control/process.h"
#include "control/readiness_probe.h"
#include "control/replica_lifecycle.h"

namespace quiver::control {

struct ReplicaSpec {
  // Unique among the supervisor's replicas, e.g. "{namespace}/{isvc}/{revision}/{index}".
  std::string id;
  // argv, environment, working directory and log file (stdout+stderr appended).
  ProcessSpec process;
  // Ports the replica listens on, already in argv; the supervisor only probes them. Kept with
  // the replica across restarts.
  int http_port = 0;
  int grpc_port = 0;  // 0: none
  // What "ready" means; a port of 0 means http_port.
  ProbeTarget readiness;
  Duration probe_timeout = std::chrono::seconds(1);
  // Start timeout, probe intervals, failure threshold, restart backoff.
  LifecycleOptions lifecycle;
  // Stop: SIGTERM, then SIGKILL of the process group after this long.
  Duration stop_grace = std::chrono::seconds(30);
  // The log is rotated to `log_path`.1 when it grows past this.
  uint64_t log_max_bytes = 10 * 1024 * 1024;
  // Lines of the log kept with a failure report.
  int log_tail_lines = 20;
};

// What the caller persists for each running replica (from every event's status) so that a
// restarted daemon can Adopt the process.
struct ReplicaRecord {
  std::string id;
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat field 22
  std::string argv_hash;    // ArgvHash(spec.process.argv)
  int http_port = 0;
  int grpc_port = 0;
  std::string log_path;
};

// How a replica last failed: for KServe's modelStatus.lastFailureInfo.
struct FailureInfo {
  std::string reason;    // "exited with code 1", "killed by signal 9 (Killed)", ...
  std::string log_tail;  // the last lines of its log
  std::chrono::system_clock::time_point time;
  pid_t pid = 0;  // the process that failed (0: it never started)
};

struct ReplicaStatus {
  std::string id;
  ReplicaState state = ReplicaState::kStarting;
  std::string reason;  // of the last state change
  pid_t pid = 0;       // 0 while no process runs
  uint64_t start_time = 0;
  bool adopted = false;  // the running process was adopted, not started by this supervisor
  int restart_count = 0;
  int http_port = 0;
  int grpc_port = 0;
  std::string argv_hash;
  std::string log_path;
  std::optional<FailureInfo> last_failure;

  // The record to persist; meaningful while pid != 0.
  ReplicaRecord Record() const;
};

struct ReplicaEvent {
  std::string id;
  ReplicaState state;
  std::string reason;
  ReplicaStatus status;  // the replica as of this event
};

class Supervisor {
 public:
  struct Options {
    // Called on the supervisor's thread for every state change. It may call the supervisor's
    // methods (no lock is held), but should not block for long: it delays probes and restarts.
    std::function<void(const ReplicaEvent&)> on_event;
    // Wall clock for failure reports (the schedule itself runs on steady_clock).
    std::function<std::chrono::system_clock::time_point()> wall_now = [] {
      return std::chrono::system_clock::now();
    };
    // How often log sizes are checked for rotation.
    Duration log_check_interval = std::chrono::seconds(1);
  };

  // Starts the supervisor's thread.
  static StatusOr<std::unique_ptr<Supervisor>> Create(Options options);

  // Stops the thread and closes the pidfds but leaves the replicas running, so that a daemon
  // restarted from the same state adopts them; call StopAllAndWait first to stop them.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Registers and starts a replica. Errors (the replica is then not registered): InvalidArgument
  // for a bad spec, NotFound for a program that does not exist, AlreadyExists for a used id.
  // A start that fails later (the log cannot be opened, exec fails) is a Failed event and is
  // retried with backoff, like a crash.
  Status Start(ReplicaSpec spec);

  // Takes over a replica process that a previous daemon started: OK when the recorded pid is
  // alive, not a zombie, and the same process (its start time matches). Then it is probed and
  // supervised as if started here (exit detection works through its pidfd though it is not our
  // child). NotFound, with the reason, when it cannot be adopted: the caller then calls Start.
  // A process that is alive but was started from a different command line (record.argv_hash
  // differs) is killed, with its process group, before NotFound is returned, so that it does
  // not keep holding the replica's ports. Other errors as Start.
  Status Adopt(ReplicaSpec spec, const ReplicaRecord& record);

  // Drains a replica: SIGTERM to its process, SIGKILL to its process group after `grace`
  // (default: the spec's stop_grace). It is forgotten after its Stopped event. NotFound for an
  // unknown id.
  Status Stop(const std::string& id, std::optional<Duration> grace = std::nullopt);

  // Stops every replica and waits until all are Stopped and their events delivered, at most
  // `timeout` (DeadlineExceeded names those still running). Not from the event callback.
  Status StopAllAndWait(std::optional<Duration> grace, Duration timeout);

  StatusOr<ReplicaStatus> GetStatus(const std::string& id) const;
  std::vector<ReplicaStatus> List() const;

 private:
  struct Replica;

  explicit Supervisor(Options options);
  void Run();
  Status ValidateSpec(ReplicaSpec& spec) const;  // guarded by mu_ (reads replicas_)
  void Spawn(Replica& replica, TimePoint now);   // guarded by mu_
  void HandleExit(Replica& replica, TimePoint now);
  void Act(Replica& replica, LifecycleAction action, TimePoint now);
  void FinishProbe(Replica& replica, TimePoint now);
  // Moves the lifecycle's transitions into pending_events_; forgets a Stopped replica.
  void Collect(Replica& replica);
  void RemoveStopped();
  void Wake();
  ReplicaStatus StatusOf(const Replica& replica) const;

  Options options_;
  UniqueFd wake_fd_;  // eventfd: new work for the loop
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable replicas_changed_;
  bool quit_ = false;                                         // guarded by mu_
  std::map<std::string, std::unique_ptr<Replica>> replicas_;  // guarded by mu_
  std::vector<ReplicaEvent> pending_events_;                  // guarded by mu_
  bool delivering_ = false;  // events taken from pending_events_ are being delivered; mu_
};

}  // namespace quiver::control
