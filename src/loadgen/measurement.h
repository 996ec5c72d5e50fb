// Latency statistics and perf_analyzer's stability rule: a load level is measured in fixed time
// windows until the last three agree within a percentage on throughput and latency. Pure
// functions over values; nothing here reads a clock.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace quiver::loadgen {

// The value at percentile `p` (0 < p <= 100) of ascending `sorted` by nearest rank: the smallest
// value with at least p% of the values at or below it. 0 for an empty span.
int64_t PercentileOfSorted(std::span<const int64_t> sorted, double p);

// Client-side latency of successful requests, in microseconds.
struct LatencySummary {
  uint64_t count = 0;
  double avg_us = 0;
  double stddev_us = 0;
  double min_us = 0;
  double max_us = 0;
  double p50_us = 0;
  double p90_us = 0;
  double p95_us = 0;
  double p99_us = 0;

  // The latency the stability rule compares: p50/p90/p95/p99 for those percentiles, the
  // average for none (or any other value).
  double Get(std::optional<double> percentile) const;
};

// Summarises latencies in nanoseconds (sorts the vector in place).
LatencySummary Summarize(std::vector<int64_t>& latencies_ns);

// One measurement window.
struct WindowStats {
  double seconds = 0;
  uint64_t completed = 0;  // successful requests that finished in the window
  uint64_t errors = 0;
  LatencySummary latency;

  double throughput() const { return seconds > 0 ? completed / seconds : 0; }
};

struct StabilityRule {
  double percentage = 10;  // max/min may be at most 1 + percentage/100
  size_t windows = 3;
  // Latency compared: this percentile (50, 90, 95 or 99), or the average when unset.
  std::optional<double> percentile;
};

// perf_analyzer's rule: true when there are at least `rule.windows` windows and, over the last
// `rule.windows` of them, max/min of throughput and max/min of latency are both within
// 1 + percentage/100. A window without successful requests is never stable.
bool IsStable(std::span<const WindowStats> windows, const StabilityRule& rule);

}  // namespace quiver::loadgen
