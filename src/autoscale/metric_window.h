// One averaging window of a revision's gateway metrics (Knative's "linear" aggregation): the
// concurrency integral and the request count kept in 1-second buckets, averaged over the last
// `window` of buckets. The KPA keeps two, a stable and a panic window.
// Thread-compatible: owned by one RevisionAutoscaler, used from one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>

#include "autoscale/kpa.h"

namespace quiver::autoscale {

class MetricWindow {
 public:
  struct Averages {
    double concurrency = 0;  // time-weighted requests in flight, summed over replicas
    double rps = 0;          // requests arriving per second
  };

  // `window`: whole seconds, at least 1 s (ResolveConfig guarantees it).
  explicit MetricWindow(Millis window);

  // Spreads the observation over the 1-second buckets it overlaps, in proportion to the
  // overlap (a 2 s observation starting at 10.5 s puts a quarter into bucket 10, half into 11
  // and a quarter into 12). A zero-length observation adds its requests to one bucket.
  // Observations may arrive late or out of order; ones older than the window are dropped.
  // Buckets are pruned relative to the latest observation, so Average() must be asked for
  // times at or after the end of what was recorded (the control plane records what it has
  // measured up to now, then decides).
  void Record(const Observation& observation);

  // The averages over the window that ends with the bucket holding `now` (Knative's linear
  // algorithm, continuous in time): the recorded integral and requests divided by the time
  // from max(first observation, window start) to min(last observation end, end of the
  // current bucket). So a window younger than its length averages only the part observed,
  // time after the last observation is not counted as zero (the data is late, not idle),
  // gaps between observations are counted as zero, and a silence of a whole window starts a
  // new partial window. Both values are 0 when nothing was observed in the window.
  Averages Average(TimePoint now) const;

  Millis window() const { return window_; }

 private:
  struct Bucket {
    double concurrency_seconds = 0;  // ∫ concurrency dt over the part of the second observed
    double requests = 0;
  };

  static int64_t BucketOf(TimePoint t);  // floor(t in seconds)
  static TimePoint BucketStart(int64_t bucket);
  void Prune();

  Millis window_;
  int64_t window_buckets_;
  std::map<int64_t, Bucket> buckets_;
  std::optional<TimePoint> first_;  // start of the current run of observations
  std::optional<TimePoint> last_;   // latest end of any observation
};

}  // namespace quiver::autoscale
