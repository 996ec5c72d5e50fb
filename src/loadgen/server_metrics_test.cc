#include "loadgen/server_metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "loadgen/prometheus_text.h"

namespace quiver::loadgen {
namespace {

// Triton's cumulative counters in µs (srv:docs/user_guide/metrics.md), two models, and a
// summary family left off (the default).
std::string Triton(double success, double queue_us, double input_us, double infer_us,
                   double output_us) {
  auto n = [](double v) { return std::to_string(static_cast<int64_t>(v)); };
  return "# HELP nv_inference_request_success Number of successful inference requests\n"
         "# TYPE nv_inference_request_success counter\n"
         "nv_inference_request_success{model=\"add_sub\",version=\"1\"} " +
         n(success) +
         "\n"
         "nv_inference_request_success{model=\"other\",version=\"1\"} 99999\n"
         "nv_inference_request_failure{model=\"add_sub\",reason=\"BACKEND\",version=\"1\"} 3\n"
         "nv_inference_count{model=\"add_sub\",version=\"1\"} " +
         n(success * 4) +
         "\n"
         "nv_inference_pending_request_count{model=\"add_sub\",version=\"1\"} 7\n"
         "# TYPE nv_inference_queue_duration_us counter\n"
         "nv_inference_queue_duration_us{model=\"add_sub\",version=\"1\"} " +
         n(queue_us) +
         "\n"
         "nv_inference_queue_duration_us{model=\"other\",version=\"1\"} 123456789\n"
         "nv_inference_compute_input_duration_us{model=\"add_sub\",version=\"1\"} " +
         n(input_us) +
         "\n"
         "nv_inference_compute_infer_duration_us{model=\"add_sub\",version=\"1\"} " +
         n(infer_us) +
         "\n"
         "nv_inference_compute_output_duration_us{model=\"add_sub\",version=\"1\"} " +
         n(output_us) +
         "\n"
         "nv_inference_request_duration_us{model=\"add_sub\",version=\"1\"} 1e9\n"
         "nv_cpu_utilization 0.5\n";
}

// A server with both stages as histograms in seconds (sum and count, with buckets).
std::string Histograms(double count, double queue_s, double compute_s) {
  auto n = [](double v) { return std::to_string(v); };
  return "# TYPE quiver_queue_duration_seconds histogram\n"
         "quiver_queue_duration_seconds_bucket{model=\"add_sub\",le=\"0.001\"} " +
         n(count) +
         "\n"
         "quiver_queue_duration_seconds_bucket{model=\"add_sub\",le=\"+Inf\"} " +
         n(count) +
         "\n"
         "quiver_queue_duration_seconds_sum{model=\"add_sub\"} " +
         n(queue_s) +
         "\n"
         "quiver_queue_duration_seconds_count{model=\"add_sub\"} " +
         n(count) +
         "\n"
         "# TYPE quiver_compute_duration_seconds histogram\n"
         "quiver_compute_duration_seconds_bucket{model=\"add_sub\",le=\"+Inf\"} " +
         n(count) +
         "\n"
         "quiver_compute_duration_seconds_sum{model=\"add_sub\"} " +
         n(compute_s) +
         "\n"
         "quiver_compute_duration_seconds_count{model=\"add_sub\"} " +
         n(count) +
         "\n"
         "quiver_requests_total{model=\"add_sub\",code=\"200\"} " +
         n(count) + "\n";
}

// What `quiver serve` exposes (observe/model_metrics.cc): the queue also as a histogram in
// seconds, the compute as Triton's µs counters only (its compute histogram is KServe's
// request_predict_seconds, whose name names no stage), failures and pending beside them.
std::string QuiverServe(double success, double queue_s, double input_us, double infer_us,
                        double output_us) {
  std::string out;
  auto line = [&out](const std::string& name, const std::string& labels, double value) {
    out += name + "{" + labels + "} " + std::to_string(value) + "\n";
  };
  const std::string mv = "model=\"add_sub\",version=\"1\"";
  line("nv_inference_request_success", mv, success);
  line("nv_inference_request_failure",
       "model=\"add_sub\",reason=\"REJECTED\",version=\"1\"", 9);
  line("nv_inference_count", mv, success * 2);
  line("nv_inference_exec_count", mv, success / 2);
  line("nv_inference_pending_request_count", mv, 3);
  line("nv_inference_request_duration_us", mv, 1e9);
  line("nv_inference_queue_duration_us", mv, queue_s * 1e6);
  line("nv_inference_compute_input_duration_us", mv, input_us);
  line("nv_inference_compute_infer_duration_us", mv, infer_us);
  line("nv_inference_compute_output_duration_us", mv, output_us);
  line("nv_inference_request_duration_seconds_bucket", mv + ",le=\"+Inf\"", success);
  line("nv_inference_request_duration_seconds_sum", mv, 1000);
  line("nv_inference_request_duration_seconds_count", mv, success);
  line("nv_inference_queue_duration_seconds_bucket", mv + ",le=\"0.001\"", success);
  line("nv_inference_queue_duration_seconds_bucket", mv + ",le=\"+Inf\"", success);
  line("nv_inference_queue_duration_seconds_sum", mv, queue_s);
  line("nv_inference_queue_duration_seconds_count", mv, success);
  line("request_predict_seconds_sum", "model_name=\"add_sub\"",
       (input_us + infer_us + output_us) / 1e6);
  line("request_predict_seconds_count", "model_name=\"add_sub\"", success);
  line("nv_model_load_duration_secs", mv, 0.5);
  line("quiver_model_state", "model=\"add_sub\",state=\"READY\",version=\"1\"", 1);
  out += "process_cpu_seconds_total 3\n";
  return out;
}

ServerTimeSnapshot Snap(const std::string& text, const char* model = "add_sub",
                        const char* version = "") {
  auto samples = ParsePrometheusText(text);
  EXPECT_TRUE(samples.ok()) << samples.status().message();
  return ExtractServerTimes(*samples, model, version);
}

TEST(PrometheusText, ParsesLabelsEscapesAndSpecialValues) {
  auto s = ParsePrometheusText(
      "# HELP x help with \"quotes\"\n"
      "\n"
      "a_total 12 1700000000000\n"
      "b{path=\"/v2/models\\\"x\\\\y\",code=\"200\",} +Inf\r\n"
      "c{} NaN\n"
      "  d{k = \"v\"} -1.5e3\n");
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->size(), 4u);
  EXPECT_EQ((*s)[0].name, "a_total");
  EXPECT_EQ((*s)[0].value, 12);
  EXPECT_EQ(*(*s)[1].Label("path"), "/v2/models\"x\\y");
  EXPECT_EQ(*(*s)[1].Label("code"), "200");
  EXPECT_TRUE(std::isinf((*s)[1].value));
  EXPECT_TRUE(std::isnan((*s)[2].value));
  EXPECT_EQ((*s)[3].value, -1500);
  EXPECT_EQ((*s)[3].Label("missing"), nullptr);
}

TEST(PrometheusText, MalformedLineNamesItsNumber) {
  auto s = ParsePrometheusText("ok 1\nbroken{a=\"x\" 2\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("line 2"), std::string::npos) << s.status().message();
  EXPECT_FALSE(ParsePrometheusText("name notanumber\n").ok());
  EXPECT_FALSE(ParsePrometheusText("{a=\"b\"} 1\n").ok());
}

TEST(ServerMetrics, TritonCountersDividedByRequestSuccess) {
  ServerTimeSnapshot before = Snap(Triton(1000, 50'000, 10'000, 200'000, 5'000));
  ServerTimeSnapshot after = Snap(Triton(3000, 250'000, 30'000, 600'000, 15'000));
  ASSERT_FALSE(before.empty());
  ServerSplit split = DiffServerTimes(before, after);
  ASSERT_TRUE(split.queue_us.has_value());
  ASSERT_TRUE(split.compute_us.has_value());
  EXPECT_DOUBLE_EQ(split.requests, 2000);
  EXPECT_DOUBLE_EQ(*split.queue_us, 100);  // 200,000 µs / 2,000 requests
  // compute = input (10) + infer (200) + output (5) µs per request
  EXPECT_DOUBLE_EQ(*split.compute_us, 215);
}

TEST(ServerMetrics, TritonSummariesWinOverCountersWhenBothExist) {
  std::string text =
      Triton(1000, 50'000, 0, 200'000, 0) +
      "nv_inference_queue_summary_us_sum{model=\"add_sub\",version=\"1\"} 1000\n"
      "nv_inference_queue_summary_us_count{model=\"add_sub\",version=\"1\"} 10\n"
      "nv_inference_queue_summary_us{model=\"add_sub\",version=\"1\",quantile=\"0.5\"} 90\n";
  std::string later = Triton(2000, 90'000, 0, 400'000, 0) +
                      "nv_inference_queue_summary_us_sum{model=\"add_sub\",version=\"1\"} 5000\n"
                      "nv_inference_queue_summary_us_count{model=\"add_sub\",version=\"1\"} 30\n";
  ServerSplit split = DiffServerTimes(Snap(text), Snap(later));
  ASSERT_TRUE(split.queue_us.has_value());
  EXPECT_DOUBLE_EQ(*split.queue_us, 200);  // (5000-1000)/(30-10), not the counter's 40
}

TEST(ServerMetrics, HistogramsSumAndCount) {
  ServerTimeSnapshot before = Snap(Histograms(100, 0.002, 0.050));
  ServerTimeSnapshot after = Snap(Histograms(600, 0.012, 0.300));
  ServerSplit split = DiffServerTimes(before, after);
  ASSERT_TRUE(split.queue_us && split.compute_us);
  EXPECT_NEAR(*split.queue_us, 20, 1e-9);     // 0.010 s / 500
  EXPECT_NEAR(*split.compute_us, 500, 1e-9);  // 0.250 s / 500
  EXPECT_DOUBLE_EQ(split.requests, 500);
}

TEST(ServerMetrics, QuiverServeQueueHistogramAndComputeCounters) {
  ServerTimeSnapshot before = Snap(QuiverServe(100, 0.002, 100, 5000, 100));
  ServerTimeSnapshot after = Snap(QuiverServe(600, 0.012, 600, 30000, 600), "add_sub", "1");
  ServerSplit split = DiffServerTimes(before, after);
  ASSERT_TRUE(split.queue_us && split.compute_us);
  EXPECT_NEAR(*split.queue_us, 20, 1e-6);    // 0.010 s / 500 requests
  EXPECT_NEAR(*split.compute_us, 52, 1e-6);  // (500 + 25,000 + 500) µs / 500 requests
  EXPECT_DOUBLE_EQ(split.requests, 500);
}

TEST(ServerMetrics, OtherModelsAndVersionsAreIgnored) {
  EXPECT_TRUE(Snap(Triton(1, 1, 1, 1, 1), "absent").empty());
  EXPECT_TRUE(Snap(Triton(1, 1, 1, 1, 1), "add_sub", "2").empty());
  EXPECT_FALSE(Snap(Triton(1, 1, 1, 1, 1), "add_sub", "1").empty());
  // KServe's Python server labels by model_name.
  EXPECT_FALSE(
      Snap("x_queue_seconds_sum{model_name=\"m\"} 1\nx_queue_seconds_count{model_name=\"m\"} 2\n",
           "m")
          .empty());
}

TEST(ServerMetrics, NothingToReportWithoutMetricsOrRequests) {
  EXPECT_TRUE(Snap("process_cpu_seconds_total 12\nhttp_requests_total{code=\"200\"} 5\n").empty());
  // Triton's counters without a request counter cannot be averaged.
  EXPECT_TRUE(Snap("nv_inference_queue_duration_us{model=\"add_sub\"} 10\n").empty());
  // No request between the scrapes: no average.
  ServerTimeSnapshot s = Snap(Histograms(100, 0.002, 0.050));
  ServerSplit split = DiffServerTimes(s, s);
  EXPECT_FALSE(split.queue_us.has_value());
  EXPECT_FALSE(split.compute_us.has_value());
  // A restarted server (counters went down) gives no average either.
  EXPECT_FALSE(
      DiffServerTimes(Snap(Histograms(600, 1, 1)), Snap(Histograms(100, 0.1, 0.1))).queue_us);
}

}  // namespace
}  // namespace quiver::loadgen
