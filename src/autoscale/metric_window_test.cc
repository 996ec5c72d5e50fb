#include "autoscale/metric_window.h"

#include <gtest/gtest.h>

#include <cmath>

namespace quiver::autoscale {
namespace {

// A fake clock: seconds since an arbitrary epoch, as plain time points.
TimePoint At(double seconds) {
  return TimePoint{} + std::chrono::milliseconds(std::llround(seconds * 1000));
}

Observation Obs(double start, double end, double concurrency, double requests = 0) {
  return Observation{At(start), At(end), concurrency, requests};
}

TEST(MetricWindowTest, EmptyWindowAveragesZero) {
  MetricWindow w(Millis(6000));
  EXPECT_EQ(w.Average(At(10)).concurrency, 0);
  EXPECT_EQ(w.Average(At(10)).rps, 0);
}

TEST(MetricWindowTest, FullWindowIsTheTimeWeightedAverage) {
  MetricWindow w(Millis(60'000));
  // 0-30 s at 100 in flight, 30-60 s at 40: (100·30 + 40·30) / 60 = 70. At now = 60 the
  // window is buckets 1..60, i.e. [1 s, 60 s]: (100·29 + 40·30) / 59 = 69.491525...
  w.Record(Obs(0, 30, 100, 300));
  w.Record(Obs(30, 60, 40, 1200));
  EXPECT_DOUBLE_EQ(w.Average(At(60)).concurrency, 69.491525);
  // Requests: 300 over 0-30 s (10/s), 1200 over 30-60 s (40/s): (10·29 + 40·30) / 59.
  EXPECT_DOUBLE_EQ(w.Average(At(60)).rps, 25.254237);
  // Half a second later the window is the same buckets, ending later in the current one.
  EXPECT_DOUBLE_EQ(w.Average(At(60.5)).concurrency, 69.491525);
}

TEST(MetricWindowTest, PartialWindowAveragesOnlyWhatWasObserved) {
  MetricWindow w(Millis(60'000));
  // 10 s of data in a 60 s window: the average is over 10 s (Knative's partial window),
  // not 140 · 10 / 60.
  w.Record(Obs(0, 10, 140, 50));
  EXPECT_DOUBLE_EQ(w.Average(At(10)).concurrency, 140);
  EXPECT_DOUBLE_EQ(w.Average(At(10)).rps, 5);
}

TEST(MetricWindowTest, LateDataIsNotCountedAsIdle) {
  MetricWindow w(Millis(60'000));
  w.Record(Obs(0, 10, 60));
  // Nothing recorded after 10 s: the average stays over what was observed until the data
  // leaves the window (buckets 41..100 at now = 100 hold nothing).
  EXPECT_DOUBLE_EQ(w.Average(At(30)).concurrency, 60);
  EXPECT_EQ(w.Average(At(100)).concurrency, 0);
}

TEST(MetricWindowTest, GapsBetweenObservationsCountAsZero) {
  MetricWindow w(Millis(60'000));
  w.Record(Obs(0, 10, 60));
  w.Record(Obs(20, 30, 0));
  // 600 request·seconds over [0, 30]: 20.
  EXPECT_DOUBLE_EQ(w.Average(At(30)).concurrency, 20);
}

TEST(MetricWindowTest, SilenceOfAWholeWindowStartsANewPartialWindow) {
  MetricWindow w(Millis(60'000));
  w.Record(Obs(0, 10, 60));
  w.Record(Obs(80, 81, 30));  // 70 s after the last data
  // Averaged over [80, 81] only; without the restart it would be 30 / 59 over [22, 81].
  EXPECT_DOUBLE_EQ(w.Average(At(81)).concurrency, 30);
}

TEST(MetricWindowTest, ObservationIsSpreadOverBucketsByTime) {
  MetricWindow w(Millis(6000));
  // [0.5, 2.5) at 4 in flight with 8 requests: buckets 0, 1, 2 get 0.5, 1 and 0.5 of it.
  w.Record(Obs(0.5, 2.5, 4, 8));
  w.Record(Obs(2.5, 3.5, 0, 0));
  // At 7.9 the window is buckets 2..7 = [2 s, 8 s); observed [2, 3.5]: 1.5 s. Bucket 2 holds
  // 4 · 0.5 = 2 request·seconds and 8 · 0.5 / 2 = 2 requests of the first observation.
  EXPECT_DOUBLE_EQ(w.Average(At(7.9)).concurrency, 1.333333);
  EXPECT_DOUBLE_EQ(w.Average(At(7.9)).rps, 1.333333);
  // At 8.0 bucket 2 has left the window: only the idle second [3, 3.5] remains.
  EXPECT_EQ(w.Average(At(8)).concurrency, 0);
  // The whole first observation while the window still covers it: 8 / 3 s.
  EXPECT_DOUBLE_EQ(w.Average(At(3.5)).concurrency, 2.666667);
}

TEST(MetricWindowTest, OldObservationsAreDropped) {
  MetricWindow w(Millis(60'000));
  w.Record(Obs(100, 101, 10));
  w.Record(Obs(0, 1, 1000));  // a whole window older than the latest data
  EXPECT_DOUBLE_EQ(w.Average(At(101)).concurrency, 10);
}

TEST(MetricWindowTest, ZeroLengthObservationCountsRequestsOnly) {
  MetricWindow w(Millis(6000));
  w.Record(Obs(0, 4, 2, 4));
  w.Record(Obs(4, 4, 100, 6));
  // 10 requests over [0, 4]; the zero-length observation adds no request·seconds.
  EXPECT_DOUBLE_EQ(w.Average(At(4)).rps, 2.5);
  EXPECT_DOUBLE_EQ(w.Average(At(4)).concurrency, 2);
}

TEST(MetricWindowTest, LongObservationKeepsItsRate) {
  MetricWindow w(Millis(6000));
  // One hour in one observation: only the end is spread into buckets, at the same rate.
  w.Record(Obs(0, 3600, 7, 36000));
  EXPECT_DOUBLE_EQ(w.Average(At(3600)).concurrency, 7);
  EXPECT_DOUBLE_EQ(w.Average(At(3600)).rps, 10);
}

}  // namespace
}  // namespace quiver::autoscale
