#include "loadgen/measurement.h"

#include <gtest/gtest.h>

#include <numeric>

namespace quiver::loadgen {
namespace {

TEST(Percentile, NearestRank) {
  std::vector<int64_t> v(100);
  std::iota(v.begin(), v.end(), 1);  // 1..100
  EXPECT_EQ(PercentileOfSorted(v, 50), 50);
  EXPECT_EQ(PercentileOfSorted(v, 90), 90);
  EXPECT_EQ(PercentileOfSorted(v, 99), 99);
  EXPECT_EQ(PercentileOfSorted(v, 100), 100);
  std::vector<int64_t> small = {10, 20, 30, 40};
  EXPECT_EQ(PercentileOfSorted(small, 50), 20);  // rank ceil(2) = 2nd
  EXPECT_EQ(PercentileOfSorted(small, 51), 30);
  EXPECT_EQ(PercentileOfSorted(small, 99), 40);
  EXPECT_EQ(PercentileOfSorted(std::vector<int64_t>{7}, 1), 7);
  EXPECT_EQ(PercentileOfSorted(std::vector<int64_t>{}, 50), 0);
}

TEST(Summarize, SortsAndConvertsToMicroseconds) {
  std::vector<int64_t> ns;
  for (int i = 1000; i >= 1; --i) ns.push_back(i * 1000);  // 1..1000 µs, descending
  LatencySummary s = Summarize(ns);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_DOUBLE_EQ(s.min_us, 1);
  EXPECT_DOUBLE_EQ(s.max_us, 1000);
  EXPECT_DOUBLE_EQ(s.avg_us, 500.5);
  EXPECT_DOUBLE_EQ(s.p50_us, 500);
  EXPECT_DOUBLE_EQ(s.p90_us, 900);
  EXPECT_DOUBLE_EQ(s.p95_us, 950);
  EXPECT_DOUBLE_EQ(s.p99_us, 990);
  EXPECT_LE(s.p50_us, s.p90_us);
  EXPECT_NEAR(s.stddev_us, 288.67, 0.01);
}

WindowStats Window(double throughput, double avg_us, double p99_us = 0) {
  WindowStats w;
  w.seconds = 1;
  w.completed = static_cast<uint64_t>(throughput);
  w.latency.count = w.completed;
  w.latency.avg_us = avg_us;
  w.latency.p99_us = p99_us;
  return w;
}

TEST(Stability, NeedsThreeWindows) {
  StabilityRule rule;
  std::vector<WindowStats> w = {Window(1000, 100), Window(1000, 100)};
  EXPECT_FALSE(IsStable(w, rule));
  w.push_back(Window(1000, 100));
  EXPECT_TRUE(IsStable(w, rule));
}

TEST(Stability, ThroughputAndLatencyWithinTenPercent) {
  StabilityRule rule;  // 10%
  // max/min = 1.10 exactly: stable.
  EXPECT_TRUE(IsStable(std::vector{Window(1000, 100), Window(1100, 105), Window(1050, 110)}, rule));
  // Throughput 1000 -> 1120: 12% apart.
  EXPECT_FALSE(
      IsStable(std::vector{Window(1000, 100), Window(1120, 100), Window(1050, 100)}, rule));
  // Latency 100 -> 115.
  EXPECT_FALSE(
      IsStable(std::vector{Window(1000, 100), Window(1000, 115), Window(1000, 100)}, rule));
}

TEST(Stability, OnlyTheLastWindowsCount) {
  StabilityRule rule;
  std::vector<WindowStats> w = {Window(100, 900), Window(5000, 50), Window(1000, 100),
                                Window(1020, 101), Window(990, 99)};
  EXPECT_TRUE(IsStable(w, rule));
}

TEST(Stability, PercentileRuleUsesThatPercentile) {
  StabilityRule rule{.percentage = 10, .windows = 3, .percentile = 99};
  // Averages agree, p99 does not.
  std::vector<WindowStats> w = {Window(1000, 100, 200), Window(1000, 100, 300),
                                Window(1000, 100, 200)};
  EXPECT_FALSE(IsStable(w, rule));
  rule.percentile.reset();
  EXPECT_TRUE(IsStable(w, rule));
}

TEST(Stability, WindowWithoutSuccessIsNeverStable) {
  StabilityRule rule;
  EXPECT_FALSE(IsStable(std::vector{Window(0, 0), Window(0, 0), Window(0, 0)}, rule));
}

TEST(Stability, PercentageIsConfigurable) {
  StabilityRule rule{.percentage = 25};
  EXPECT_TRUE(IsStable(std::vector{Window(1000, 100), Window(1200, 100), Window(1100, 120)}, rule));
}

}  // namespace
}  // namespace quiver::loadgen
