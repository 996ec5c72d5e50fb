#include "loadgen/profiler.h"

#include <algorithm>
#include <deque>
#include <thread>

namespace quiver::loadgen {
namespace {

class SystemClock : public ProfileClock {
 public:
  SteadyClock::time_point Now() override { return SteadyClock::now(); }
  void SleepUntil(SteadyClock::time_point t) override { std::this_thread::sleep_until(t); }
};

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

ProfileClock* RealClock() {
  static SystemClock clock;
  return &clock;
}

StatusOr<LevelResult> ProfileLevel(LoadEngine& engine, const LoadLevel& level,
                                   const ProfileOptions& options, ServerTimeSource* server,
                                   ProfileObserver* observer, ProfileClock* clock) {
  LevelResult result;
  result.level = level;
  const size_t keep = std::max<size_t>(options.stability.windows, 1);
  std::vector<WindowStats> stats;
  std::deque<WindowSamples> recent;  // samples of the last `keep` windows
  // scrapes[k]: at the start of window k (0-based); scrapes[k+1] at its end.
  std::vector<std::optional<ServerTimeSnapshot>> scrapes;

  QUIVER_RETURN_IF_ERROR(engine.Start(level));
  scrapes.push_back(server ? server->Scrape() : std::nullopt);
  SteadyClock::time_point window_start = clock->Now();
  for (int trial = 1; trial <= std::max(options.max_trials, 1); ++trial) {
    const SteadyClock::time_point end = window_start + options.interval;
    while (true) {
      SteadyClock::time_point now = clock->Now();
      if (now >= end) break;
      clock->SleepUntil(std::min(end, now + options.progress_every));
      if (observer != nullptr && clock->Now() < end) {
        uint64_t completed = 0, errors = 0;
        engine.Peek(&completed, &errors);
        observer->OnProgress(level, trial, Seconds(clock->Now() - window_start), completed, errors);
      }
    }
    WindowSamples samples = engine.Take();
    SteadyClock::time_point now = clock->Now();
    WindowStats w;
    w.seconds = Seconds(now - window_start);
    window_start = now;
    scrapes.push_back(server ? server->Scrape() : std::nullopt);
    w.completed = samples.latencies_ns.size();
    w.errors = samples.errors;
    w.latency = Summarize(samples.latencies_ns);
    stats.push_back(w);
    result.windows = trial;
    result.errors += samples.errors;
    for (const auto& [kind, n] : samples.error_kinds) result.error_kinds[kind] += n;
    if (result.first_error.empty()) result.first_error = samples.first_error;
    recent.push_back(std::move(samples));
    if (recent.size() > keep) recent.pop_front();
    const bool stable = IsStable(stats, options.stability);
    if (observer != nullptr) observer->OnWindow(level, trial, w, stable);
    if (w.completed == 0 && w.errors > 0) {
      result.all_failed = true;
      break;
    }
    if (stable) {
      result.stable = true;
      break;
    }
  }
  engine.Stop();

  // Merge the last windows.
  const size_t merged = recent.size();
  WindowSamples all;
  for (auto& s : recent) {
    result.delayed += s.delayed;
    all.latencies_ns.insert(all.latencies_ns.end(), s.latencies_ns.begin(), s.latencies_ns.end());
  }
  for (size_t i = stats.size() - merged; i < stats.size(); ++i) result.seconds += stats[i].seconds;
  result.requests = all.latencies_ns.size();
  result.latency = Summarize(all.latencies_ns);
  result.requests_per_sec = result.seconds > 0 ? result.requests / result.seconds : 0;
  result.infer_per_sec = result.requests_per_sec * static_cast<double>(options.batch_size);
  const auto& before = scrapes[scrapes.size() - 1 - merged];
  const auto& after = scrapes.back();
  if (before && after) {
    ServerSplit split = DiffServerTimes(*before, *after);
    result.server_queue_us = split.queue_us;
    result.server_compute_us = split.compute_us;
  }
  return result;
}

}  // namespace quiver::loadgen
