#include "loadgen/measurement.h"

#include <algorithm>
#include <cmath>

namespace quiver::loadgen {

int64_t PercentileOfSorted(std::span<const int64_t> sorted, double p) {
  if (sorted.empty()) return 0;
  double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  auto index = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(sorted.size()))) - 1;
  return sorted[index];
}

double LatencySummary::Get(std::optional<double> percentile) const {
  if (!percentile) return avg_us;
  if (*percentile == 50) return p50_us;
  if (*percentile == 90) return p90_us;
  if (*percentile == 95) return p95_us;
  if (*percentile == 99) return p99_us;
  return avg_us;
}

LatencySummary Summarize(std::vector<int64_t>& latencies_ns) {
  LatencySummary s;
  if (latencies_ns.empty()) return s;
  std::sort(latencies_ns.begin(), latencies_ns.end());
  s.count = latencies_ns.size();
  double sum = 0;
  for (int64_t v : latencies_ns) sum += static_cast<double>(v);
  double mean = sum / static_cast<double>(s.count);
  double sq = 0;
  for (int64_t v : latencies_ns) {
    double d = static_cast<double>(v) - mean;
    sq += d * d;
  }
  s.avg_us = mean / 1e3;
  s.stddev_us = std::sqrt(sq / static_cast<double>(s.count)) / 1e3;
  s.min_us = static_cast<double>(latencies_ns.front()) / 1e3;
  s.max_us = static_cast<double>(latencies_ns.back()) / 1e3;
  s.p50_us = static_cast<double>(PercentileOfSorted(latencies_ns, 50)) / 1e3;
  s.p90_us = static_cast<double>(PercentileOfSorted(latencies_ns, 90)) / 1e3;
  s.p95_us = static_cast<double>(PercentileOfSorted(latencies_ns, 95)) / 1e3;
  s.p99_us = static_cast<double>(PercentileOfSorted(latencies_ns, 99)) / 1e3;
  return s;
}

bool IsStable(std::span<const WindowStats> windows, const StabilityRule& rule) {
  if (rule.windows == 0 || windows.size() < rule.windows) return false;
  auto last = windows.subspan(windows.size() - rule.windows);
  double limit = 1 + rule.percentage / 100.0;
  double tmin = 0, tmax = 0, lmin = 0, lmax = 0;
  for (size_t i = 0; i < last.size(); ++i) {
    if (last[i].completed == 0) return false;
    double t = last[i].throughput();
    double l = last[i].latency.Get(rule.percentile);
    if (t <= 0 || l <= 0) return false;
    tmin = i == 0 ? t : std::min(tmin, t);
    tmax = i == 0 ? t : std::max(tmax, t);
    lmin = i == 0 ? l : std::min(lmin, l);
    lmax = i == 0 ? l : std::max(lmax, l);
  }
  return tmax / tmin <= limit && lmax / lmin <= limit;
}

}  // namespace quiver::loadgen
