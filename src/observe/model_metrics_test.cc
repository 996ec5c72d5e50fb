#include "observe/model_metrics.h"

#include <gtest/gtest.h>

namespace quiver::observe {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(ModelMetrics, SuccessSplitsTheTimelineIntoTritonAndKServeFigures) {
  MetricsRegistry r;
  InferenceMetrics im(&r);
  auto m = im.ForModel("add_sub", "1");
  RequestTimeline t;
  t.received = Clock::time_point(microseconds(1000));
  t.enqueued = t.received + microseconds(30);        // preprocess 30 µs
  t.compute_start = t.enqueued + microseconds(200);  // queue 200 µs
  t.infer_start = t.compute_start + microseconds(5);
  t.infer_end = t.infer_start + microseconds(1000);
  t.compute_end = t.infer_end + microseconds(7);
  t.encode_start = t.compute_end + microseconds(1);
  t.done = t.encode_start + microseconds(20);  // postprocess 20 µs
  m->RecordSuccess(t);
  m->RecordExecution(4);
  m->RecordFailure(FailureReason::kRejected);
  m->RecordFailure(FailureReason::kRejected);
  m->AddPending(3);
  m->AddPending(-1);
  std::string text = r.Scrape();
  const std::string mv = "{model=\"add_sub\",version=\"1\"}";
  EXPECT_TRUE(Has(text, "nv_inference_request_success" + mv + " 1")) << text;
  EXPECT_TRUE(Has(text,
                  "nv_inference_request_failure{model=\"add_sub\",reason=\"REJECTED\","
                  "version=\"1\"} 2"));
  // Every reason exists from the start, so rate() works from the first failure.
  for (const char* reason : {"CANCELED", "BACKEND", "OTHER"}) {
    EXPECT_TRUE(Has(text, std::string("nv_inference_request_failure{model=\"add_sub\",reason=\"") +
                              reason + "\",version=\"1\"} 0"));
  }
  EXPECT_TRUE(Has(text, "nv_inference_count" + mv + " 4"));
  EXPECT_TRUE(Has(text, "nv_inference_exec_count" + mv + " 1"));
  EXPECT_TRUE(Has(text, "nv_inference_pending_request_count" + mv + " 2"));
  EXPECT_TRUE(Has(text, "nv_inference_request_duration_us" + mv + " 1263"));
  EXPECT_TRUE(Has(text, "nv_inference_queue_duration_us" + mv + " 200"));
  EXPECT_TRUE(Has(text, "nv_inference_compute_input_duration_us" + mv + " 5"));
  EXPECT_TRUE(Has(text, "nv_inference_compute_infer_duration_us" + mv + " 1000"));
  EXPECT_TRUE(Has(text, "nv_inference_compute_output_duration_us" + mv + " 7"));
  // Histograms: the request (1.263 ms) lands in le=0.0025, not le=0.001.
  EXPECT_TRUE(Has(text,
                  "nv_inference_request_duration_seconds_bucket{model=\"add_sub\","
                  "version=\"1\",le=\"0.001\"} 0"));
  EXPECT_TRUE(Has(text,
                  "nv_inference_request_duration_seconds_bucket{model=\"add_sub\","
                  "version=\"1\",le=\"0.0025\"} 1"));
  EXPECT_TRUE(Has(text,
                  "nv_inference_queue_duration_seconds_bucket{model=\"add_sub\","
                  "version=\"1\",le=\"0.00025\"} 1"));
  EXPECT_TRUE(Has(text, "request_predict_seconds_sum{model_name=\"add_sub\"} 0.001012"));
  EXPECT_TRUE(Has(text, "request_preprocess_seconds_sum{model_name=\"add_sub\"} 3e-05"));
  EXPECT_TRUE(Has(text, "request_postprocess_seconds_sum{model_name=\"add_sub\"} 2e-05"));
  // KServe's buckets are all there (a superset of prometheus_client's defaults).
  for (const char* le : {"0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75",
                         "1", "2.5", "5", "7.5", "10", "+Inf"}) {
    EXPECT_TRUE(Has(
        text,
        std::string("request_predict_seconds_bucket{model_name=\"add_sub\",le=\"") + le + "\"} 1"))
        << le;
  }
}

TEST(ModelMetrics, UnsetStagesCountZero) {
  MetricsRegistry r;
  InferenceMetrics im(&r);
  auto m = im.ForModel("m", "1");
  RequestTimeline t;  // a request that never queued: only received and done
  t.received = Clock::time_point(microseconds(10));
  t.done = t.received + microseconds(50);
  m->RecordSuccess(t);
  std::string text = r.Scrape();
  EXPECT_TRUE(Has(text, "nv_inference_queue_duration_us{model=\"m\",version=\"1\"} 0")) << text;
  EXPECT_TRUE(Has(text, "nv_inference_request_duration_us{model=\"m\",version=\"1\"} 50"));
}

// As Triton: a version's series leave the exposition when it is released; a reload that
// overlaps the running version continues its series.
TEST(ModelMetrics, SeriesFollowTheLoadedModel) {
  MetricsRegistry r;
  InferenceMetrics im(&r);
  auto v1 = im.ForModel("m", "1");
  v1->RecordExecution(1);
  auto reload = im.ForModel("m", "1");
  EXPECT_EQ(reload, v1);  // shared while the old one lives
  auto other = im.ForModel("other", "1");
  v1.reset();
  EXPECT_TRUE(Has(r.Scrape(), "nv_inference_exec_count{model=\"m\",version=\"1\"} 1"));
  reload.reset();
  std::string text = r.Scrape();
  EXPECT_EQ(text.find("model=\"m\""), std::string::npos) << text;
  EXPECT_EQ(text.find("model_name=\"m\""), std::string::npos) << text;
  EXPECT_NE(text.find("model=\"other\""), std::string::npos);
  // Loaded again later: counting starts over.
  auto again = im.ForModel("m", "1");
  EXPECT_TRUE(Has(r.Scrape(), "nv_inference_exec_count{model=\"m\",version=\"1\"} 0"));
}

TEST(ModelMetrics, KServeSeriesStayWhileAnotherVersionServes) {
  MetricsRegistry r;
  InferenceMetrics im(&r);
  auto v1 = im.ForModel("m", "1");
  auto v2 = im.ForModel("m", "2");
  v1.reset();
  std::string text = r.Scrape();
  EXPECT_EQ(text.find("version=\"1\""), std::string::npos);
  EXPECT_NE(text.find("request_predict_seconds_count{model_name=\"m\"}"), std::string::npos);
}

TEST(ModelMetrics, ExplainGoesToKServesExplainHistogram) {
  MetricsRegistry r;
  InferenceMetrics im(&r);
  auto plain = im.ForModel("plain", "1");
  auto explained = im.ForModel("explained", "1", /*has_explainer=*/true);
  RequestTimeline t;
  t.received = Clock::time_point(microseconds(10));
  t.compute_start = t.infer_start = t.received + microseconds(1);
  t.infer_end = t.compute_end = t.infer_start + microseconds(4);
  t.done = t.compute_end + microseconds(1);
  t.explain = true;
  explained->RecordSuccess(t);
  t.explain = false;
  explained->RecordSuccess(t);
  std::string text = r.Scrape();
  EXPECT_TRUE(Has(text, "request_explain_seconds_count{model_name=\"explained\"} 1")) << text;
  EXPECT_TRUE(Has(text, "request_predict_seconds_count{model_name=\"explained\"} 1"));
  EXPECT_TRUE(Has(text, "nv_inference_request_success{model=\"explained\",version=\"1\"} 2"));
  // A model without an explainer has no explain series.
  EXPECT_EQ(text.find("request_explain_seconds_count{model_name=\"plain\"}"), std::string::npos);
}

TEST(ModelMetrics, ReasonNames) {
  EXPECT_EQ(FailureReasonName(FailureReason::kRejected), "REJECTED");
  EXPECT_EQ(FailureReasonName(FailureReason::kCanceled), "CANCELED");
  EXPECT_EQ(FailureReasonName(FailureReason::kBackend), "BACKEND");
  EXPECT_EQ(FailureReasonName(FailureReason::kOther), "OTHER");
}

}  // namespace
}  // namespace quiver::observe
