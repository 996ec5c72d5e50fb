// The part of a load generator that sends requests: a LoadEngine keeps a load level (a number of
// requests in flight, or a request rate) on its own threads and records what completes, which the
// profiler takes window by window. Engines exist for HTTP (http_load.h) and gRPC (grpc_load.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "loadgen/schedule.h"

namespace quiver::loadgen {

// One level of a sweep: closed loop (exactly `concurrency` requests in flight, each stream sends
// its next request when the previous one completes) or open loop (`rate` requests per second on
// a schedule, whatever the server does).
struct LoadLevel {
  enum class Mode { kConcurrency, kRequestRate };
  Mode mode = Mode::kConcurrency;
  int64_t concurrency = 1;
  double rate = 0;
  Distribution distribution = Distribution::kConstant;

  // "concurrency 8" or "rate 500/s" for messages.
  std::string ToString() const;
};

// Error counts by kind: "HTTP 503", "gRPC UNAVAILABLE", "connect: Connection refused", ...
using ErrorCounts = std::map<std::string, uint64_t, std::less<>>;

// What completed in one window. Latencies are of successful requests only.
struct WindowSamples {
  std::vector<int64_t> latencies_ns;
  uint64_t errors = 0;
  // Open loop: requests sent more than 1 ms after their scheduled time, because every
  // connection was busy or the sender fell behind.
  uint64_t delayed = 0;
  ErrorCounts error_kinds;
  std::string first_error;  // the detail of one error, e.g. the server's message

  void Merge(WindowSamples&& other);
};

// Collects the samples of one sender thread. Record* are called by that thread, Take and Peek by
// the profiler; a mutex that is almost never contended keeps them apart.
class SampleRecorder {
 public:
  void RecordSuccess(int64_t latency_ns);
  void RecordError(std::string_view kind, std::string_view detail);
  void RecordDelayed();
  // Moves out everything recorded since the last Take.
  WindowSamples Take();
  // Successes and errors since the last Take.
  void Peek(uint64_t* completed, uint64_t* errors) const;

 private:
  mutable std::mutex mu_;
  WindowSamples samples_;  // guarded by mu_
};

struct EngineOptions {
  int threads = 1;  // sender threads, each with its own event loop and connections
  // Open loop: at most this many requests in flight in all (HTTP: connections); a request due
  // while all are busy waits for one, and its latency counts from its scheduled time (the wait
  // is the server's doing). Other requests count from when they are sent, so the lateness of
  // the sender's own timer is not charged to the server (it is counted as `delayed`).
  int max_in_flight = 256;
  std::chrono::milliseconds request_timeout{30000};
  uint64_t seed = 1;  // Poisson schedules: sender i uses seed + i
};

class LoadEngine {
 public:
  virtual ~LoadEngine() = default;
  // Starts sending at `level` on the engine's threads and returns. Call once per engine.
  virtual Status Start(const LoadLevel& level) = 0;
  // Everything that completed since the last Take (or Start), from every thread.
  virtual WindowSamples Take() = 0;
  // Successes and errors since the last Take, for a progress line.
  virtual void Peek(uint64_t* completed, uint64_t* errors) const = 0;
  // Stops sending, abandons requests in flight (they are not recorded), closes connections and
  // joins the threads. Idempotent; the destructor calls it.
  virtual void Stop() = 0;
};

}  // namespace quiver::loadgen
