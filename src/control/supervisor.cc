#include "control/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "control/log_file.h"

namespace quiver::control {

struct Supervisor::Replica {
  explicit Replica(ReplicaSpec s)
      : spec(std::move(s)), argv_hash(ArgvHash(spec.process.argv)), lifecycle(spec.lifecycle) {}

  ReplicaSpec spec;
  std::string argv_hash;
  ReplicaLifecycle lifecycle;
  std::string reason;
  pid_t pid = 0;
  uint64_t start_time = 0;
  UniqueFd pidfd;
  bool adopted = false;
  // Whether pid leads its own process group, so that a group kill reaches only its processes.
  bool owns_group = false;
  std::unique_ptr<ReadinessProbe> probe;
  std::optional<FailureInfo> last_failure;
  bool log_rotation_warned = false;
};

ReplicaRecord ReplicaStatus::Record() const {
  return ReplicaRecord{id, pid, start_time, argv_hash, http_port, grpc_port, log_path};
}

StatusOr<std::unique_ptr<Supervisor>> Supervisor::Create(Options options) {
  std::unique_ptr<Supervisor> supervisor(new Supervisor(std::move(options)));
  supervisor->wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!supervisor->wake_fd_.valid()) {
    return Internal(std::string("eventfd: ") + strerrordesc_np(errno));
  }
  supervisor->thread_ = std::thread([s = supervisor.get()] { s->Run(); });
  return supervisor;
}

Supervisor::Supervisor(Options options) : options_(std::move(options)) {}

Supervisor::~Supervisor() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
}

void Supervisor::Wake() {
  const uint64_t one = 1;
  // A full counter still wakes the loop; nothing to handle.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof(one));
}

Status Supervisor::ValidateSpec(ReplicaSpec& spec) const {
  if (spec.id.empty()) return InvalidArgument("id: must not be empty");
  const std::string where = "replica '" + spec.id + "': ";
  if (replicas_.count(spec.id)) {
    return {StatusCode::kAlreadyExists, where + "a replica with this id is already supervised"};
  }
  if (spec.process.argv.empty()) return InvalidArgument(where + "argv: must name a program");
  if (spec.process.log_path.empty()) return InvalidArgument(where + "log_path: must be set");
  auto port_ok = [](int port) { return port > 0 && port <= 65535; };
  if (!port_ok(spec.http_port)) {
    return InvalidArgument(where + "http_port: " + std::to_string(spec.http_port) +
                           " is outside 1..65535");
  }
  if (spec.grpc_port != 0 && !port_ok(spec.grpc_port)) {
    return InvalidArgument(where + "grpc_port: " + std::to_string(spec.grpc_port) +
                           " is outside 1..65535 (0 for none)");
  }
  if (spec.readiness.port == 0) spec.readiness.port = spec.http_port;
  if (!port_ok(spec.readiness.port)) {
    return InvalidArgument(where + "readiness.port: " + std::to_string(spec.readiness.port) +
                           " is outside 1..65535");
  }
  if (spec.readiness.kind == ProbeTarget::Kind::kHttpGet &&
      (spec.readiness.path.empty() || spec.readiness.path[0] != '/')) {
    return InvalidArgument(where + "readiness.path: '" + spec.readiness.path +
                           "' must start with '/'");
  }
  const auto& l = spec.lifecycle;
  if (l.failure_threshold < 1) {
    return InvalidArgument(where + "failure_threshold: must be at least 1, got " +
                           std::to_string(l.failure_threshold));
  }
  if (l.probe_initial_interval <= Duration::zero() || l.probe_period <= Duration::zero() ||
      l.start_timeout <= Duration::zero() || spec.probe_timeout <= Duration::zero()) {
    return InvalidArgument(where +
                           "probe intervals, probe_timeout and start_timeout must be positive");
  }
  if (l.backoff.initial <= Duration::zero() || l.backoff.max < l.backoff.initial) {
    return InvalidArgument(where + "backoff: initial must be positive and max at least initial");
  }
  if (spec.stop_grace < Duration::zero()) {
    return InvalidArgument(where + "stop_grace: must not be negative");
  }
  if (spec.log_max_bytes == 0) return InvalidArgument(where + "log_max_bytes: must be positive");
  auto exe = ResolveExecutable(spec.process.argv[0], spec.process.env);
  if (!exe.ok()) return exe.status().WithPrefix("replica '" + spec.id + "'");
  return Status::Ok();
}

Status Supervisor::Start(ReplicaSpec spec) {
  std::lock_guard lock(mu_);
  QUIVER_RETURN_IF_ERROR(ValidateSpec(spec));
  auto replica = std::make_unique<Replica>(std::move(spec));
  Replica& r = *replica;
  replicas_.emplace(r.spec.id, std::move(replica));
  Spawn(r, SteadyClock::now());
  Collect(r);
  Wake();
  return Status::Ok();
}

Status Supervisor::Adopt(ReplicaSpec spec, const ReplicaRecord& record) {
  std::lock_guard lock(mu_);
  QUIVER_RETURN_IF_ERROR(ValidateSpec(spec));
  const std::string where = "replica '" + spec.id + "': ";
  const std::string process = "process " + std::to_string(record.pid);
  auto stat = ReadProcStat(record.pid);
  if (!stat.ok()) return NotFound(where + process + " is gone");
  if (stat->state == 'Z') return NotFound(where + process + " has exited (zombie)");
  if (stat->start_time != record.start_time) {
    return NotFound(where + "pid " + std::to_string(record.pid) +
                    " now belongs to another process (start time " +
                    std::to_string(stat->start_time) + ", recorded " +
                    std::to_string(record.start_time) + ")");
  }
  // The pidfd pins the process; checking the start time again after opening it closes the
  // window in which the pid could have been reused between the two reads.
  auto pidfd = OpenPidfd(record.pid);
  if (!pidfd.ok()) return NotFound(where + process + " is gone");
  auto again = ReadProcStat(record.pid);
  if (!again.ok() || again->start_time != record.start_time || again->state == 'Z') {
    return NotFound(where + process + " exited while being adopted");
  }
  const bool owns_group = again->pgrp == record.pid;
  if (record.argv_hash != ArgvHash(spec.process.argv) || record.http_port != spec.http_port ||
      record.grpc_port != spec.grpc_port) {
    if (owns_group) SignalProcessGroup(record.pid, SIGKILL);
    (void)SignalPidfd(pidfd->get(), SIGKILL);
    return NotFound(where + process +
                    " was started from a different command line or ports; it was killed so a "
                    "fresh replica can take its place");
  }
  auto replica = std::make_unique<Replica>(std::move(spec));
  Replica& r = *replica;
  r.pid = record.pid;
  r.start_time = record.start_time;
  r.pidfd = std::move(*pidfd);
  r.adopted = true;
  r.owns_group = owns_group;
  replicas_.emplace(r.spec.id, std::move(replica));
  r.lifecycle.OnSpawned(SteadyClock::now(), /*adopted=*/true);
  Collect(r);
  Wake();
  return Status::Ok();
}

Status Supervisor::Stop(const std::string& id, std::optional<Duration> grace) {
  std::lock_guard lock(mu_);
  auto it = replicas_.find(id);
  if (it == replicas_.end()) return NotFound("replica '" + id + "' is not supervised");
  Replica& r = *it->second;
  if (r.lifecycle.RequestStop(SteadyClock::now(), grace.value_or(r.spec.stop_grace))) {
    // quiver serve drains in-flight requests on SIGTERM. Only the main process gets it, as in
    // Kubernetes; what it forked is killed with the group if it outlives the grace period.
    Status s = SignalPidfd(r.pidfd.get(), SIGTERM);
    if (!s.ok()) spdlog::warn("replica '{}': SIGTERM failed: {}", id, s.ToString());
  }
  r.probe.reset();
  Collect(r);
  RemoveStopped();
  Wake();
  return Status::Ok();
}

Status Supervisor::StopAllAndWait(std::optional<Duration> grace, Duration timeout) {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, replica] : replicas_) ids.push_back(id);
  }
  for (const auto& id : ids) (void)Stop(id, grace);
  std::unique_lock lock(mu_);
  // Wait for the Stopped events to be delivered too, so the caller has seen them on return.
  const bool done = replicas_changed_.wait_for(
      lock, timeout, [&] { return replicas_.empty() && pending_events_.empty() && !delivering_; });
  if (done) return Status::Ok();
  std::string left;
  for (const auto& [id, replica] : replicas_) left += (left.empty() ? "" : ", ") + id;
  return DeadlineExceeded("replicas still running after the stop timeout: " + left);
}

StatusOr<ReplicaStatus> Supervisor::GetStatus(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = replicas_.find(id);
  if (it == replicas_.end()) return NotFound("replica '" + id + "' is not supervised");
  return StatusOf(*it->second);
}

std::vector<ReplicaStatus> Supervisor::List() const {
  std::lock_guard lock(mu_);
  std::vector<ReplicaStatus> out;
  for (const auto& [id, replica] : replicas_) out.push_back(StatusOf(*replica));
  return out;
}

ReplicaStatus Supervisor::StatusOf(const Replica& r) const {
  ReplicaStatus s;
  s.id = r.spec.id;
  s.state = r.lifecycle.state();
  s.reason = r.reason;
  s.pid = r.pid;
  s.start_time = r.start_time;
  s.adopted = r.adopted;
  s.restart_count = r.lifecycle.restart_count();
  s.http_port = r.spec.http_port;
  s.grpc_port = r.spec.grpc_port;
  s.argv_hash = r.argv_hash;
  s.log_path = r.spec.process.log_path;
  s.last_failure = r.last_failure;
  return s;
}

void Supervisor::Spawn(Replica& r, TimePoint now) {
  auto spawned = SpawnProcess(r.spec.process);
  if (!spawned.ok()) {
    r.last_failure = FailureInfo{spawned.status().message(), "", options_.wall_now(), 0};
    r.lifecycle.OnSpawnFailed(now, "cannot start: " + spawned.status().message());
    return;
  }
  r.pid = spawned->pid;
  r.start_time = spawned->start_time;
  r.pidfd = std::move(spawned->pidfd);
  r.adopted = false;
  r.owns_group = true;
  r.lifecycle.OnSpawned(now, /*adopted=*/false);
}

void Supervisor::HandleExit(Replica& r, TimePoint now) {
  // An adopted process is not our child: its exit status went to its real parent (init), so
  // the pidfd says only that it ended.
  std::string reason = ReapChild(r.pidfd.get())
                           .value_or(r.adopted ? "exited (exit status unknown: adopted process)"
                                               : "exited (exit status unavailable)");
  // Whatever the replica forked dies with it, so nothing keeps holding its ports.
  if (r.owns_group) SignalProcessGroup(r.pid, SIGKILL);
  const bool failure = r.lifecycle.state() != ReplicaState::kDraining;
  if (failure) {
    r.last_failure =
        FailureInfo{reason, ReadLogTail(r.spec.process.log_path, r.spec.log_tail_lines),
                    options_.wall_now(), r.pid};
    spdlog::warn("replica '{}' (pid {}) {}", r.spec.id, r.pid, reason);
  }
  r.pidfd.Reset();
  r.pid = 0;
  r.start_time = 0;
  r.adopted = false;
  r.probe.reset();
  r.lifecycle.OnExited(now, reason);
}

void Supervisor::Act(Replica& r, LifecycleAction action, TimePoint now) {
  switch (action) {
    case LifecycleAction::kProbe:
      r.probe = ReadinessProbe::Begin(r.spec.readiness, now + r.spec.probe_timeout);
      if (r.probe->result()) FinishProbe(r, now);
      return;
    case LifecycleAction::kSpawn:
      Spawn(r, now);
      return;
    case LifecycleAction::kKill:
      r.probe.reset();
      if (r.owns_group) SignalProcessGroup(r.pid, SIGKILL);
      if (r.pidfd.valid()) (void)SignalPidfd(r.pidfd.get(), SIGKILL);
      return;
  }
}

void Supervisor::FinishProbe(Replica& r, TimePoint now) {
  const ProbeResult result = *r.probe->result();
  r.probe.reset();
  r.lifecycle.OnProbeResult(now, result.ok, result.detail);
}

void Supervisor::Collect(Replica& r) {
  for (auto& t : r.lifecycle.TakeTransitions()) {
    r.reason = t.reason;
    ReplicaEvent event{r.spec.id, t.state, t.reason, StatusOf(r)};
    event.status.state = t.state;
    event.status.reason = t.reason;
    pending_events_.push_back(std::move(event));
  }
}

void Supervisor::RemoveStopped() {
  bool removed = false;
  for (auto it = replicas_.begin(); it != replicas_.end();) {
    const Replica& r = *it->second;
    if (r.lifecycle.state() == ReplicaState::kStopped && !r.lifecycle.process_running()) {
      it = replicas_.erase(it);
      removed = true;
    } else {
      ++it;
    }
  }
  if (removed) replicas_changed_.notify_all();
}

void Supervisor::Run() {
  std::vector<pollfd> fds;
  // The replica each polled fd belongs to and whether it is the pidfd (else the probe socket).
  struct Owner {
    std::string id;
    bool is_pidfd;
  };
  std::vector<Owner> owners;
  TimePoint next_log_check = SteadyClock::now() + options_.log_check_interval;
  for (;;) {
    fds.clear();
    owners.clear();
    int timeout_ms = -1;
    std::vector<ReplicaEvent> events;
    {
      std::lock_guard lock(mu_);
      events.swap(pending_events_);
      delivering_ = !events.empty();
      if (quit_) return;
      fds.push_back({wake_fd_.get(), POLLIN, 0});
      owners.push_back({"", false});
      std::optional<TimePoint> next;
      auto consider = [&](std::optional<TimePoint> t) {
        if (t && (!next || *t < *next)) next = t;
      };
      if (!replicas_.empty()) consider(next_log_check);
      for (auto& [id, r] : replicas_) {
        if (r->pidfd.valid()) {
          fds.push_back({r->pidfd.get(), POLLIN, 0});
          owners.push_back({id, true});
        }
        if (r->probe && r->probe->fd() >= 0) {
          fds.push_back({r->probe->fd(), r->probe->events(), 0});
          owners.push_back({id, false});
          consider(r->probe->deadline());
        }
        consider(r->lifecycle.NextDeadline());
      }
      if (next) {
        const auto left = *next - SteadyClock::now();
        // Round up so the loop does not wake a hair early and spin.
        timeout_ms = static_cast<int>(
            std::max<int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(left).count()));
      }
    }
    if (!events.empty()) {
      // Deliver before sleeping; the callback may have queued new work, so poll at once.
      for (const auto& e : events) {
        if (options_.on_event) options_.on_event(e);
      }
      std::lock_guard lock(mu_);
      delivering_ = false;
      replicas_changed_.notify_all();
      continue;
    }
    const int rc = ::poll(fds.data(), fds.size(), timeout_ms);
    if (rc < 0 && errno != EINTR) {
      spdlog::error("supervisor: poll failed: {}", strerrordesc_np(errno));
    }

    std::lock_guard lock(mu_);
    if (quit_) return;
    const TimePoint now = SteadyClock::now();
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      if (i == 0) {
        uint64_t count;
        [[maybe_unused]] ssize_t n = ::read(wake_fd_.get(), &count, sizeof(count));
        continue;
      }
      auto it = replicas_.find(owners[i].id);
      if (it == replicas_.end()) continue;
      Replica& r = *it->second;
      // The fd may have been closed and reused (a stop or restart on another thread).
      if (owners[i].is_pidfd) {
        if (r.pidfd.get() == fds[i].fd) HandleExit(r, now);
      } else if (r.probe && r.probe->fd() == fds[i].fd) {
        r.probe->OnReady(fds[i].revents);
      }
    }
    const bool check_logs = now >= next_log_check;
    if (check_logs) next_log_check = now + options_.log_check_interval;
    for (auto& [id, r] : replicas_) {
      if (r->probe && !r->probe->result() && now >= r->probe->deadline()) r->probe->Expire();
      if (r->probe && r->probe->result()) FinishProbe(*r, now);
      for (LifecycleAction action : r->lifecycle.Due(now)) Act(*r, action, now);
      if (check_logs && r->pidfd.valid()) {
        auto rotated = RotateLogIfLarger(r->spec.process.log_path, r->spec.log_max_bytes);
        if (!rotated.ok() && !r->log_rotation_warned) {
          spdlog::warn("replica '{}': {}", id, rotated.status().ToString());
          r->log_rotation_warned = true;
        }
      }
      Collect(*r);
    }
    RemoveStopped();
  }
}

}  // namespace quiver::control
