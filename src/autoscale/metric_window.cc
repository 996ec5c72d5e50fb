#include "autoscale/metric_window.h"

#include <algorithm>
#include <cmath>

namespace quiver::autoscale {
namespace {

using Seconds = std::chrono::duration<double>;

// Averages are rounded to 6 decimals, as Knative does, so that 350 requests averaged over
// 59 s is 350 and not 350.00000000000006 (which would ask for one replica more).
double Round6(double v) { return std::round(v * 1e6) / 1e6; }

}  // namespace

MetricWindow::MetricWindow(Millis window)
    : window_(std::max(window, Millis(1000))),
      window_buckets_(std::chrono::duration_cast<std::chrono::seconds>(window_).count()) {}

int64_t MetricWindow::BucketOf(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

TimePoint MetricWindow::BucketStart(int64_t bucket) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::seconds(bucket)));
}

void MetricWindow::Record(const Observation& observation) {
  const TimePoint start = observation.start;
  const TimePoint end = std::max(observation.end, observation.start);
  // Too old to fall into any window still to be asked for.
  if (last_ && end + window_ < *last_) return;

  if (!first_ || (last_ && start - *last_ >= window_)) {
    // First observation, or the first after a whole window of silence: Knative restarts the
    // partial-window average here instead of counting the silence as zeros.
    buckets_.clear();
    first_ = start;
    last_ = end;
  } else {
    first_ = std::min(*first_, start);
    last_ = std::max(*last_, end);
  }

  const double requests = std::max(0.0, observation.requests);
  const double concurrency = std::max(0.0, observation.average_concurrency);
  if (end == start) {
    buckets_[BucketOf(start)].requests += requests;
    Prune();
    return;
  }
  const double total_seconds = Seconds(end - start).count();
  // Only the last window (plus the bucket it straddles) can ever be averaged, so a very long
  // observation is not spread over buckets that would be pruned at once.
  TimePoint t = std::max(start, end - window_ - std::chrono::seconds(1));
  while (t < end) {
    const int64_t bucket = BucketOf(t);
    const TimePoint segment_end = std::min(end, BucketStart(bucket + 1));
    const double overlap = Seconds(segment_end - t).count();
    Bucket& b = buckets_[bucket];
    b.concurrency_seconds += concurrency * overlap;
    b.requests += requests * overlap / total_seconds;
    t = segment_end;
  }
  Prune();
}

void MetricWindow::Prune() {
  // Windows asked for later end at or after the latest observation's bucket.
  const int64_t oldest_kept = BucketOf(*last_) - window_buckets_ + 1;
  buckets_.erase(buckets_.begin(), buckets_.lower_bound(oldest_kept));
}

MetricWindow::Averages MetricWindow::Average(TimePoint now) const {
  if (!last_) return {};
  const int64_t now_bucket = BucketOf(now);
  const int64_t first_bucket = now_bucket - window_buckets_ + 1;
  const TimePoint window_start = BucketStart(first_bucket);
  const TimePoint window_end = BucketStart(now_bucket + 1);
  const TimePoint span_start = std::max(*first_, window_start);
  const TimePoint span_end = std::min(*last_, window_end);
  if (span_end <= span_start) return {};
  const double span = Seconds(span_end - span_start).count();

  double concurrency_seconds = 0;
  double requests = 0;
  for (auto it = buckets_.lower_bound(first_bucket);
       it != buckets_.end() && it->first <= now_bucket; ++it) {
    concurrency_seconds += it->second.concurrency_seconds;
    requests += it->second.requests;
  }
  return Averages{.concurrency = Round6(concurrency_seconds / span),
                  .rps = Round6(requests / span)};
}

}  // namespace quiver::autoscale
