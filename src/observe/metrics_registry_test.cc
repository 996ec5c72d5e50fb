#include "observe/metrics_registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>
#include <vector>

#include "observe/prometheus_text.h"

namespace quiver::observe {
namespace {

TEST(PrometheusText, ExactExpositionOfASmallRegistry) {
  MetricsRegistry r;
  CounterFamily* requests =
      r.AddCounter("app_requests_total", "Requests handled.", {"model", "code"});
  GaugeFamily* queue = r.AddGauge("app_queue_length", "Queued requests.");
  HistogramFamily* latency =
      r.AddHistogram("app_latency_seconds", "Latency.", {"model"}, {0.25, 1, 2});
  requests->WithLabels({"b", "200"})->Increment(2);
  requests->WithLabels({"a", "500"})->Increment();
  requests->WithLabels({"a", "200"})->Increment(40);
  queue->WithLabels({})->Set(3.5);
  auto h = latency->WithLabels({"a"});
  h->Observe(0.25);  // on a bound: counts in that bucket (le is inclusive)
  h->Observe(0.5);
  h->Observe(4);  // beyond the last bound: only +Inf
  EXPECT_EQ(r.Scrape(),
            "# HELP app_requests_total Requests handled.\n"
            "# TYPE app_requests_total counter\n"
            "app_requests_total{model=\"a\",code=\"200\"} 40\n"
            "app_requests_total{model=\"a\",code=\"500\"} 1\n"
            "app_requests_total{model=\"b\",code=\"200\"} 2\n"
            "# HELP app_queue_length Queued requests.\n"
            "# TYPE app_queue_length gauge\n"
            "app_queue_length 3.5\n"
            "# HELP app_latency_seconds Latency.\n"
            "# TYPE app_latency_seconds histogram\n"
            "app_latency_seconds_bucket{model=\"a\",le=\"0.25\"} 1\n"
            "app_latency_seconds_bucket{model=\"a\",le=\"1\"} 2\n"
            "app_latency_seconds_bucket{model=\"a\",le=\"2\"} 2\n"
            "app_latency_seconds_bucket{model=\"a\",le=\"+Inf\"} 3\n"
            "app_latency_seconds_sum{model=\"a\"} 4.75\n"
            "app_latency_seconds_count{model=\"a\"} 3\n");
}

TEST(PrometheusText, EscapesHelpAndLabelValues) {
  MetricsRegistry r;
  r.AddCounter("x_total", "Help with \\ and\nnewline \"kept\".", {"path"})
      ->WithLabels({"a\"b\\c\nd"})
      ->Increment();
  EXPECT_EQ(r.Scrape(),
            "# HELP x_total Help with \\\\ and\\nnewline \"kept\".\n"
            "# TYPE x_total counter\n"
            "x_total{path=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(PrometheusText, SpecialValuesAndShortestNumbers) {
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(2.5), "2.5");
  EXPECT_EQ(FormatValue(0.00025), "0.00025");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(std::stod(FormatValue(1.0 / 3)), 1.0 / 3);  // reads back exactly
}

TEST(PrometheusText, NameValidation) {
  EXPECT_TRUE(ValidMetricName("nv_inference_count"));
  EXPECT_TRUE(ValidMetricName("a:b_c9"));
  EXPECT_FALSE(ValidMetricName("9lives"));
  EXPECT_FALSE(ValidMetricName("with-dash"));
  EXPECT_FALSE(ValidMetricName(""));
  EXPECT_TRUE(ValidLabelName("model_name"));
  EXPECT_FALSE(ValidLabelName("__reserved"));
  EXPECT_FALSE(ValidLabelName("a:b"));
}

TEST(MetricsRegistry, EmptyFamiliesAndRemovedChildrenAreNotWritten) {
  MetricsRegistry r;
  CounterFamily* c = r.AddCounter("c_total", "C.", {"model"});
  r.AddHistogram("h_seconds", "H.", {"model"}, {1});
  EXPECT_EQ(r.Scrape(), "");
  auto child = c->WithLabels({"m"});
  child->Increment(5);
  EXPECT_NE(r.Scrape().find("c_total{model=\"m\"} 5"), std::string::npos);
  // The same labels give the same child.
  EXPECT_EQ(c->WithLabels({"m"}), child);
  c->Remove({"m"});
  EXPECT_EQ(r.Scrape(), "");
  child->Increment();  // a holder may keep updating, unseen
  EXPECT_EQ(child->Value(), 6u);
  // Asked again, the labels get a new child that starts at zero.
  EXPECT_EQ(c->WithLabels({"m"})->Value(), 0u);
}

TEST(MetricsRegistry, ScaledCounterShowsNanosecondsAsMicroseconds) {
  MetricsRegistry r;
  r.AddCounter("d_us", "D.", {}, 1000)->WithLabels({})->Increment(1500);
  EXPECT_EQ(r.Scrape(), "# HELP d_us D.\n# TYPE d_us counter\nd_us 1.5\n");
}

TEST(MetricsRegistry, CollectorsWriteAfterFamilies) {
  MetricsRegistry r;
  r.AddGauge("g", "G.")->WithLabels({})->Set(1);
  r.AddCollector([](PrometheusWriter& out) {
    out.Family("later", "Computed at scrape.", MetricType::kGauge);
    out.Sample("later", 7);
  });
  EXPECT_EQ(r.Scrape(),
            "# HELP g G.\n# TYPE g gauge\ng 1\n"
            "# HELP later Computed at scrape.\n# TYPE later gauge\nlater 7\n");
}

TEST(MetricsRegistryDeathTest, BadOrRepeatedNamesAbort) {
  EXPECT_DEATH(MetricsRegistry().AddCounter("bad-name", "x"), "invalid metric name");
  EXPECT_DEATH(MetricsRegistry().AddCounter("ok", "x", {"__x"}), "invalid label name");
  EXPECT_DEATH(MetricsRegistry().AddHistogram("h", "x", {"le"}, {1}), "invalid label name");
  EXPECT_DEATH(MetricsRegistry().AddHistogram("h", "x", {}, {2, 1}), "ascending");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddGauge("twice", "x");
        r.AddCounter("twice", "x");
      },
      "registered twice");
}

TEST(Histogram, BucketsAreInclusiveUpperBounds) {
  Histogram h(std::make_shared<const std::vector<double>>(std::vector<double>{1, 2, 4}));
  for (double v : {0.0, 1.0, 1.0000001, 2.0, 3.9, 4.0, 4.1, 1e9, -5.0}) h.Observe(v);
  Histogram::Snapshot s = h.Collect();
  ASSERT_EQ(s.buckets.size(), 4u);
  EXPECT_EQ(s.buckets[0], 3u);  // 0, 1, -5
  EXPECT_EQ(s.buckets[1], 2u);  // 1.0000001, 2
  EXPECT_EQ(s.buckets[2], 2u);  // 3.9, 4
  EXPECT_EQ(s.buckets[3], 2u);  // 4.1, 1e9
  EXPECT_EQ(s.count, 9u);
  EXPECT_NEAR(s.sum, 0 + 1 + 1.0000001 + 2 + 3.9 + 4 + 4.1 + 1e9 - 5, 1e-6);
}

// Updates from several threads (on whatever CPUs they land) all count: the shards sum to the
// exact totals.
TEST(MetricsRegistry, ConcurrentUpdatesSumExactly) {
  MetricsRegistry r;
  auto counter = r.AddCounter("n_total", "N.")->WithLabels({});
  auto gauge = r.AddGauge("g", "G.")->WithLabels({});
  auto hist = r.AddHistogram("h", "H.", {}, {0.5, 1.5})->WithLabels({});
  constexpr int kThreads = 8;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counter->Increment();
        gauge->Add(1);
        gauge->Add(-1);
        hist->Observe(t % 2 ? 1.0 : 2.0);
      }
    });
  }
  // A scrape while updates run reads without disturbing them.
  std::string during = r.Scrape();
  EXPECT_NE(during.find("n_total"), std::string::npos);
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter->Value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(gauge->Value(), 0);
  Histogram::Snapshot s = hist->Collect();
  EXPECT_EQ(s.count, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(s.buckets[0], 0u);
  EXPECT_EQ(s.buckets[1], uint64_t{kThreads / 2} * kPerThread);
  EXPECT_EQ(s.buckets[2], uint64_t{kThreads / 2} * kPerThread);
  EXPECT_DOUBLE_EQ(s.sum, (kThreads / 2) * kPerThread * 1.0 + (kThreads / 2) * kPerThread * 2.0);
}

// A caller may pass the shard it took once; any number is a valid shard.
TEST(MetricsRegistry, ExplicitShardsAllCount) {
  MetricsRegistry r;
  auto c = r.AddCounter("c_total", "C.")->WithLabels({});
  auto h = r.AddHistogram("h", "H.", {}, {1})->WithLabels({});
  for (int shard : {0, 1, 5, 17, 1000}) {
    c->Increment(2, shard);
    h->Observe(0.5, shard);
  }
  EXPECT_EQ(c->Value(), 10u);
  EXPECT_EQ(h->Collect().buckets[0], 5u);
  EXPECT_DOUBLE_EQ(h->Collect().sum, 2.5);
  int s = CurrentShard();
  EXPECT_GE(s, 0);
}

TEST(MetricsRegistry, ConcurrentChildCreationGivesOneChild) {
  MetricsRegistry r;
  CounterFamily* f = r.AddCounter("c_total", "C.", {"model"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([f] {
      for (int i = 0; i < 1000; ++i) f->WithLabels({"m" + std::to_string(i % 10)})->Increment();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(f->WithLabels({"m" + std::to_string(i)})->Value(), 400u);
}

}  // namespace
}  // namespace quiver::observe
