// OTLP/HTTP JSON encoding of spans (parsed back with simdjson), the spans made for a request,
// and the exporter against a real local receiver.
#include <gtest/gtest.h>
#include <simdjson.h>

#include "observe/otlp_json.h"
#include "observe/test_sink.h"
#include "observe/trace_exporter.h"

namespace quiver::observe {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

std::string_view Str(simdjson::dom::element e) { return std::string_view(e); }

// Attribute `key` of a span (or resource) JSON object, as its value object.
simdjson::dom::element Attr(simdjson::dom::element holder, std::string_view key) {
  for (simdjson::dom::element a : holder["attributes"].get_array()) {
    if (Str(a["key"]) == key) return a["value"];
  }
  ADD_FAILURE() << "no attribute " << key;
  return holder;
}

TEST(OtlpJson, EncodesABatchOfSpans) {
  SpanRecord root;
  root.trace_id =
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")->trace_id;
  root.span_id.bytes = {1, 2, 3, 4, 5, 6, 7, 8};
  root.name = "POST /v2/models/m/infer";
  root.kind = SpanKind::kServer;
  root.start_unix_nano = 1700000000123456789ull;
  root.end_unix_nano = 1700000000123999999ull;
  root.trace_state = "k=v";
  root.attributes = {{"s", std::string("x\"y")}, {"i", int64_t{-7}}, {"d", 1.5}, {"b", true}};
  root.error = true;
  root.status_message = "HTTP 500";
  SpanRecord child = root;
  child.name = "queue";
  child.kind = SpanKind::kInternal;
  child.parent_span_id = root.span_id;
  child.span_id.bytes = {9, 9, 9, 9, 9, 9, 9, 9};
  child.error = false;
  child.attributes = {};
  std::vector<SpanRecord> spans = {root, child};

  std::string json = EncodeOtlpJson(OtlpResource{.service_name = "svc", .service_version = "1.2"},
                                    spans);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  simdjson::dom::element rs = doc["resourceSpans"].at(0);
  EXPECT_EQ(Str(Attr(rs["resource"], "service.name")["stringValue"]), "svc");
  EXPECT_EQ(Str(Attr(rs["resource"], "service.version")["stringValue"]), "1.2");
  simdjson::dom::element scope = rs["scopeSpans"].at(0);
  EXPECT_EQ(Str(scope["scope"]["name"]), "quiver");
  simdjson::dom::array out = scope["spans"].get_array();
  ASSERT_EQ(out.size(), 2u);
  simdjson::dom::element s0 = out.at(0), s1 = out.at(1);
  EXPECT_EQ(Str(s0["traceId"]), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(Str(s0["spanId"]), "0102030405060708");
  EXPECT_EQ(s0["parentSpanId"].error(), simdjson::NO_SUCH_FIELD);  // a root
  EXPECT_EQ(Str(s0["name"]), "POST /v2/models/m/infer");
  EXPECT_EQ(int64_t(s0["kind"]), 2);
  EXPECT_EQ(Str(s0["startTimeUnixNano"]), "1700000000123456789");  // a string, not a number
  EXPECT_EQ(Str(s0["endTimeUnixNano"]), "1700000000123999999");
  EXPECT_EQ(Str(s0["traceState"]), "k=v");
  EXPECT_EQ(Str(Attr(s0, "s")["stringValue"]), "x\"y");
  EXPECT_EQ(Str(Attr(s0, "i")["intValue"]), "-7");
  EXPECT_EQ(double(Attr(s0, "d")["doubleValue"]), 1.5);
  EXPECT_EQ(bool(Attr(s0, "b")["boolValue"]), true);
  EXPECT_EQ(int64_t(s0["status"]["code"]), 2);
  EXPECT_EQ(Str(s0["status"]["message"]), "HTTP 500");
  EXPECT_EQ(Str(s1["parentSpanId"]), "0102030405060708");
  EXPECT_EQ(int64_t(s1["kind"]), 1);
  EXPECT_EQ(s1["status"]["code"].error(), simdjson::NO_SUCH_FIELD);  // UNSET
}

TEST(OtlpJson, ClientTextThatIsNotUtf8StillMakesValidJson) {
  SpanRecord s;
  s.trace_id = NewTraceId();
  s.span_id = NewSpanId();
  s.name = "GET /bad\xff\xfe";
  s.attributes = {{"url.path", std::string("/bad\xc3")}};
  std::string json = EncodeOtlpJson(OtlpResource{}, std::vector<SpanRecord>{s});
  EXPECT_TRUE(simdjson::validate_utf8(json.data(), json.size()));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  EXPECT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS);
}

TEST(OtlpTracesUrl, AppendsTheTracesPathOnce) {
  EXPECT_EQ(OtlpTracesUrl("http://collector:4318"), "http://collector:4318/v1/traces");
  EXPECT_EQ(OtlpTracesUrl("http://collector:4318/"), "http://collector:4318/v1/traces");
  EXPECT_EQ(OtlpTracesUrl("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
  EXPECT_EQ(OtlpTracesUrl("http://c/prefix"), "http://c/prefix/v1/traces");
}

// A finished, queued and executed v2 request with an incoming parent.
RequestTelemetry QueuedRequest() {
  RequestTelemetry r;
  r.transport = RequestTelemetry::Transport::kHttp;
  r.method = "POST";
  r.target = "/v2/models/sleep/infer?x=1";
  r.request_id = "rid-1";
  r.model_name = "sleep";
  r.model_version = "1";
  r.has_trace = r.export_span = true;
  r.trace = *ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  r.parent_span_id = r.trace.span_id;
  r.trace.span_id = NewSpanId();
  r.start_wall = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  r.start = Clock::now();
  r.enqueued = r.start + microseconds(100);
  r.exec_start = r.start + microseconds(300);
  r.exec_end = r.start + microseconds(1300);
  r.end = r.start + microseconds(1400);
  r.status = 200;
  r.bytes_in = 10;
  r.bytes_out = 20;
  return r;
}

TEST(RequestSpans, ServerSpanWithQueueAndExecuteChildren) {
  RequestTelemetry r = QueuedRequest();
  auto spans = RequestSpans(r);
  ASSERT_EQ(spans.size(), 3u);
  const SpanRecord &server = spans[0], &queue = spans[1], &exec = spans[2];
  EXPECT_EQ(server.name, "POST /v2/models/sleep/infer");
  EXPECT_EQ(server.kind, SpanKind::kServer);
  EXPECT_EQ(server.trace_id, r.trace.trace_id);
  EXPECT_EQ(server.span_id, r.trace.span_id);
  EXPECT_EQ(server.parent_span_id.Hex(), "00f067aa0ba902b7");
  const uint64_t t0 = 1700000000ull * 1000000000ull;
  EXPECT_EQ(server.start_unix_nano, t0);
  EXPECT_EQ(server.end_unix_nano, t0 + 1400000);
  EXPECT_FALSE(server.error);
  EXPECT_EQ(queue.name, "queue");
  EXPECT_EQ(exec.name, "execute");
  for (const SpanRecord* child : {&queue, &exec}) {
    EXPECT_EQ(child->trace_id, r.trace.trace_id);
    EXPECT_EQ(child->parent_span_id, r.trace.span_id);
    EXPECT_NE(child->span_id, r.trace.span_id);
    EXPECT_EQ(child->kind, SpanKind::kInternal);
  }
  EXPECT_EQ(queue.start_unix_nano, t0 + 100000);
  EXPECT_EQ(queue.end_unix_nano, t0 + 300000);
  EXPECT_EQ(exec.start_unix_nano, t0 + 300000);
  EXPECT_EQ(exec.end_unix_nano, t0 + 1300000);
  auto has = [&](std::string_view key, const SpanAttribute::Value& v) {
    for (const auto& a : server.attributes) {
      if (a.key == key) return a.value == v;
    }
    return false;
  };
  EXPECT_TRUE(has("http.request.method", std::string("POST")));
  EXPECT_TRUE(has("url.path", std::string("/v2/models/sleep/infer")));
  EXPECT_TRUE(has("url.query", std::string("x=1")));
  EXPECT_TRUE(has("http.response.status_code", int64_t{200}));
  EXPECT_TRUE(has("model.name", std::string("sleep")));
  EXPECT_TRUE(has("model.version", std::string("1")));
  EXPECT_TRUE(has("quiver.request_id", std::string("rid-1")));
}

TEST(RequestSpans, ARequestThatNeverReachedAModelHasOnlyItsServerSpan) {
  RequestTelemetry r = QueuedRequest();
  r.enqueued = r.exec_start = r.exec_end = {};
  r.status = 503;
  auto spans = RequestSpans(r);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_TRUE(spans[0].error);
  EXPECT_EQ(spans[0].status_message, "HTTP 503");
}

TEST(RequestSpans, ARequestThatTimedOutInTheQueueHasAQueueSpanToTheEnd) {
  RequestTelemetry r = QueuedRequest();
  r.exec_start = r.exec_end = {};
  auto spans = RequestSpans(r);
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[1].name, "queue");
  EXPECT_EQ(spans[1].end_unix_nano, spans[0].end_unix_nano);
}

TEST(RequestSpans, GrpcCallsUseRpcNamesAndAttributes) {
  RequestTelemetry r = QueuedRequest();
  r.transport = RequestTelemetry::Transport::kGrpc;
  r.method = "ModelInfer";
  r.target = "/inference.GRPCInferenceService/ModelInfer";
  r.status = 14;  // UNAVAILABLE
  r.error = "queue full";
  auto spans = RequestSpans(r);
  EXPECT_EQ(spans[0].name, "inference.GRPCInferenceService/ModelInfer");
  EXPECT_TRUE(spans[0].error);
  EXPECT_EQ(spans[0].status_message, "queue full");
}

std::unique_ptr<RequestTelemetry> Finished() {
  return std::make_unique<RequestTelemetry>(QueuedRequest());
}

TEST(TraceExporter, ExportsQueuedRequestsInBatchesToTheEndpoint) {
  TestSink receiver;
  TraceExporterOptions o;
  o.traces_url = receiver.url("/v1/traces");
  o.resource.service_name = "quiver-test";
  o.schedule_delay = milliseconds(20);
  TraceExporter exporter(o);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(exporter.Export(Finished()));
  exporter.Shutdown(Clock::now() + std::chrono::seconds(5));
  auto got = receiver.WaitFor(1);
  ASSERT_GE(got.size(), 1u);
  size_t spans = 0;
  simdjson::dom::parser parser;
  for (const auto& req : got) {
    EXPECT_EQ(req.target, "/v1/traces");
    EXPECT_EQ(req.headers.at("content-type"), "application/json");
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(req.body).get(doc), simdjson::SUCCESS);
    spans += doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].get_array().size();
  }
  EXPECT_EQ(spans, 9u);  // 3 requests x (server, queue, execute)
  EXPECT_EQ(exporter.exported_spans(), 9u);
  EXPECT_EQ(exporter.dropped(), 0u);
}

TEST(TraceExporter, RetriesAnUnavailableCollector) {
  TestSink receiver;
  receiver.AnswerWith({503, 503});
  TraceExporterOptions o;
  o.traces_url = receiver.url("/v1/traces");
  o.schedule_delay = milliseconds(10);
  o.retry = RetryPolicy{.max_retries = 3, .initial_backoff = milliseconds(5)};
  TraceExporter exporter(o);
  exporter.Export(Finished());
  receiver.WaitFor(3);
  exporter.Shutdown(Clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(receiver.count(), 3u);
  EXPECT_EQ(exporter.exported_spans(), 3u);
  EXPECT_EQ(exporter.failed_spans(), 0u);
}

TEST(TraceExporter, DropsAndCountsWhenTheQueueIsFullWithoutBlocking) {
  TestSink receiver;
  receiver.Hold();  // a collector that does not answer
  TraceExporterOptions o;
  o.traces_url = receiver.url("/v1/traces");
  o.max_queue = 4;
  o.max_batch = 1;
  o.schedule_delay = milliseconds(1);
  TraceExporter exporter(o);
  exporter.Export(Finished());
  receiver.WaitFor(1);  // the exporter thread is now stuck on the first batch (10 s timeout)
  std::vector<std::unique_ptr<RequestTelemetry>> requests;
  for (int i = 0; i < 100; ++i) requests.push_back(Finished());
  auto start = Clock::now();
  int accepted = 0;
  for (auto& r : requests) accepted += exporter.Export(std::move(r));
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  EXPECT_EQ(accepted, 4);
  EXPECT_EQ(exporter.dropped(), 96u);
  // Shutdown is bounded by its deadline although the collector never answers.
  start = Clock::now();
  exporter.Shutdown(Clock::now() + milliseconds(300));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  receiver.Release();
}

}  // namespace
}  // namespace quiver::observe
