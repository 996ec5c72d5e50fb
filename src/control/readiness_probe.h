// Readiness checks of a replica: an HTTP GET of a health path (ready when it answers 200-399, as
// Kubernetes' httpGet probe) or a bare TCP connect for servers without a health route. A probe
// is a non-blocking state machine driven by the Supervisor's poll loop, so one hung replica
// never delays the others' probes. One object per check; not thread-safe; owns its socket.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "control/process.h"
#include "control/replica_lifecycle.h"

namespace quiver::control {

struct ProbeTarget {
  enum class Kind { kHttpGet, kTcpConnect };
  Kind kind = Kind::kHttpGet;
  std::string host = "127.0.0.1";  // IPv4 or IPv6 literal
  int port = 0;
  // OIP's `/v2/health/ready`; `/v1/models/{name}` for V1-only runtimes.
  std::string path = "/v2/health/ready";
};

struct ProbeResult {
  bool ok = false;
  // What a user reads in the replica's status: "HTTP 503", "connection refused", ...
  std::string detail;
};

class ReadinessProbe {
 public:
  // Starts the check with a non-blocking connect; it must finish by `deadline`. A failure known
  // at once (bad address, connection refused) is in result() on return.
  static std::unique_ptr<ReadinessProbe> Begin(const ProbeTarget& target, TimePoint deadline);

  // The socket to poll and the events to wait for; -1 / 0 once finished.
  int fd() const { return result_ ? -1 : socket_.get(); }
  short events() const;
  TimePoint deadline() const { return deadline_; }

  // Continues after poll() reported `revents` on fd().
  void OnReady(short revents);
  // The deadline passed before an answer: the probe fails.
  void Expire();

  // Set once the probe finished.
  const std::optional<ProbeResult>& result() const { return result_; }

 private:
  enum class Phase { kConnecting, kSending, kReading };
  ReadinessProbe(ProbeTarget target, TimePoint deadline);
  void Finish(bool ok, std::string detail);
  void Send();
  void Read();

  ProbeTarget target_;
  TimePoint deadline_;
  UniqueFd socket_;
  Phase phase_ = Phase::kConnecting;
  std::string request_;
  size_t sent_ = 0;
  std::string response_;
  std::optional<ProbeResult> result_;
};

// Runs one probe to completion, blocking the calling thread at most `timeout`.
ProbeResult RunProbe(const ProbeTarget& target, Duration timeout);

}  // namespace quiver::control
