// Measures one load level the way perf_analyzer does: fixed windows, each closed by taking what
// the engine recorded, until the last three windows are stable (measurement.h) or --max-trials
// windows have run; the result merges the last three. The server's queue/compute split comes from
// scrapes at each window boundary. Clock and server are injected, so tests run without sleeping.
// Not thread-safe; runs on the caller's thread while the engine's threads send.
#pragma once

#include <chrono>
#include <optional>

#include "loadgen/load_engine.h"
#include "loadgen/measurement.h"
#include "loadgen/report.h"
#include "loadgen/server_metrics.h"

namespace quiver::loadgen {

using SteadyClock = std::chrono::steady_clock;

class ProfileClock {
 public:
  virtual ~ProfileClock() = default;
  virtual SteadyClock::time_point Now() = 0;
  virtual void SleepUntil(SteadyClock::time_point t) = 0;
};

// The real steady clock.
ProfileClock* RealClock();

// Reads the server's cumulative queue/compute times; nullopt when the scrape failed.
class ServerTimeSource {
 public:
  virtual ~ServerTimeSource() = default;
  virtual std::optional<ServerTimeSnapshot> Scrape() = 0;
};

// Told what happens, for a progress line. Default: nothing.
class ProfileObserver {
 public:
  virtual ~ProfileObserver() = default;
  // During window `window` (1-based), `elapsed_s` into it.
  virtual void OnProgress(const LoadLevel&, int /*window*/, double /*elapsed_s*/,
                          uint64_t /*completed*/, uint64_t /*errors*/) {}
  virtual void OnWindow(const LoadLevel&, int /*window*/, const WindowStats&, bool /*stable*/) {}
};

struct ProfileOptions {
  std::chrono::milliseconds interval{5000};
  StabilityRule stability;
  int max_trials = 10;
  int64_t batch_size = 1;
  std::chrono::milliseconds progress_every{250};
};

// Starts `engine` at `level`, measures, stops it. `server` and `observer` may be null.
// Latency, throughput and the server split are over the merged last windows; errors and
// error_kinds over every window at this level (an error anywhere makes a run suspect).
StatusOr<LevelResult> ProfileLevel(LoadEngine& engine, const LoadLevel& level,
                                   const ProfileOptions& options, ServerTimeSource* server,
                                   ProfileObserver* observer, ProfileClock* clock);

}  // namespace quiver::loadgen
