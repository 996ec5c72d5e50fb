// The access-log line, and Telemetry's per-request decisions: request ids, trace context and
// sampling, and which payload events a request produces.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <poll.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <thread>

#include "observe/access_log.h"
#include "observe/telemetry.h"
#include "observe/test_sink.h"

namespace quiver::observe {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;

RequestTelemetry Done() {
  RequestTelemetry r;
  r.request_id = "req-42";
  r.method = "POST";
  r.target = "/v2/models/sleep/infer";
  r.model_name = "sleep";
  r.model_version = "1";
  r.status = 200;
  r.bytes_in = 120;
  r.bytes_out = 240;
  r.start = Clock::now();
  r.enqueued = r.start + microseconds(50);
  r.exec_start = r.start + microseconds(1050);
  r.exec_end = r.start + microseconds(3050);
  r.end = r.start + microseconds(3250);
  r.has_trace = true;
  r.trace.trace_id = NewTraceId();
  return r;
}

TEST(AccessLine, TextHasTheIdRouteStatusBytesAndTimings) {
  RequestTelemetry r = Done();
  std::string line = FormatAccessLine(r, false);
  EXPECT_EQ(line,
            "access request_id=req-42 method=POST path=/v2/models/sleep/infer status=200 "
            "bytes_in=120 bytes_out=240 model=sleep queue_ms=1.000 compute_ms=2.000 "
            "total_ms=3.250 trace_id=" + r.trace.trace_id.Hex());
}

TEST(AccessLine, JsonHasTheFieldsAtTheTopLevel) {
  RequestTelemetry r = Done();
  r.target = "/weird\xff";
  r.status = 503;
  // The logger adds {"time":...,"level":..., and the closing brace.
  std::string doc_text = "{\"time\":\"t\",\"level\":\"info\"," + FormatAccessLine(r, true) + "}";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(doc_text).get(doc), simdjson::SUCCESS) << doc_text;
  EXPECT_EQ(std::string_view(doc["msg"]), "access");
  EXPECT_EQ(std::string_view(doc["request_id"]), "req-42");
  EXPECT_EQ(std::string_view(doc["method"]), "POST");
  EXPECT_EQ(std::string_view(doc["path"]), "/weird?");
  EXPECT_EQ(int64_t(doc["status"]), 503);
  EXPECT_EQ(uint64_t(doc["bytes_out"]), 240u);
  EXPECT_DOUBLE_EQ(double(doc["queue_ms"]), 1.0);
  EXPECT_DOUBLE_EQ(double(doc["compute_ms"]), 2.0);
  EXPECT_DOUBLE_EQ(double(doc["total_ms"]), 3.25);
  EXPECT_EQ(std::string_view(doc["model"]), "sleep");
}

TEST(AccessLine, ARequestThatRanInlineHasNoQueueTime) {
  RequestTelemetry r = Done();
  r.enqueued = {};
  EXPECT_NE(FormatAccessLine(r, false).find("queue_ms=0.000 compute_ms=2.000"),
            std::string::npos);
}

TEST(AccessLog, WritesWholeLinesThroughItsBuffer) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string all;
  std::thread reader([&] {
    char buf[8192];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof(buf))) > 0) all.append(buf, static_cast<size_t>(n));
  });
  {
    AccessLog log(false, fds[1]);
    RequestTelemetry r = Done();
    for (int i = 0; i < 1000; ++i) {
      r.request_id = "req-" + std::to_string(i);
      log.Write(r);
    }
  }  // destruction flushes
  close(fds[1]);
  reader.join();
  close(fds[0]);
  std::istringstream in(all);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    EXPECT_NE(line.find(" I access request_id=req-" + std::to_string(n) + " "), std::string::npos)
        << line;
    ++n;
  }
  EXPECT_EQ(n, 1000);
  EXPECT_EQ(all.back(), '\n');
}

TEST(AccessLog, TheFlusherWritesAnIdleLogSoon) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::string line;
  {
    AccessLog log(true, fds[1]);
    log.Write(Done());
    // No Flush: the flusher thread writes the line within its 100 ms period.
    pollfd p{.fd = fds[0], .events = POLLIN};
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof(buf));
    ASSERT_GT(n, 0);
    line.assign(buf, static_cast<size_t>(n));
  }
  EXPECT_NE(line.find(R"("msg":"access","request_id":"req-42")"), std::string::npos) << line;
  close(fds[0]);
  close(fds[1]);
}

Telemetry::HeaderLookup Headers(std::map<std::string, std::string> h) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(h));
  return [shared](std::string_view name) -> std::string_view {
    auto it = shared->find(std::string(name));
    return it == shared->end() ? std::string_view() : std::string_view(it->second);
  };
}

constexpr char kParent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
constexpr char kUnsampledParent[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

std::unique_ptr<TraceExporter> Exporter() {
  // Never reached in these tests: Begin only decides.
  return std::make_unique<TraceExporter>(
      TraceExporterOptions{.traces_url = "http://127.0.0.1:9/v1/traces"});
}

TEST(Telemetry, TakesAUsableRequestIdAndMakesOneOtherwise) {
  Telemetry t(TelemetryOptions{}, nullptr, nullptr);
  auto r = t.Begin(RequestTelemetry::Transport::kHttp, "GET", "/", Headers({{"x-request-id",
                                                                             "abc-1"}}), 0);
  EXPECT_EQ(r->request_id, "abc-1");
  r = t.Begin(RequestTelemetry::Transport::kHttp, "GET", "/", Headers({{"x-request-id", "a b"}}),
              0);
  EXPECT_EQ(r->request_id.size(), 36u);  // a UUID
  auto r2 = t.Begin(RequestTelemetry::Transport::kHttp, "GET", "/", Headers({}), 0);
  EXPECT_EQ(r2->request_id.size(), 36u);
  EXPECT_NE(r->request_id, r2->request_id);
  EXPECT_FALSE(IsUsableRequestId(std::string(129, 'a')));
}

TEST(Telemetry, AServerSpanContinuesTheIncomingTrace) {
  Telemetry t(TelemetryOptions{.sampling_ratio = 0.0}, Exporter(), nullptr);
  auto r = t.Begin(RequestTelemetry::Transport::kHttp, "POST", "/x",
                   Headers({{"traceparent", kParent}, {"tracestate", "k=v"}}), 0);
  EXPECT_TRUE(r->has_trace);
  EXPECT_EQ(r->trace.trace_id.Hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(r->parent_span_id.Hex(), "00f067aa0ba902b7");
  EXPECT_NE(r->trace.span_id.Hex(), "00f067aa0ba902b7");
  EXPECT_TRUE(r->export_span);  // the parent's sampled flag wins over ratio 0
  EXPECT_EQ(r->trace.tracestate, "k=v");
  // Outgoing calls carry this request's span as their parent.
  EXPECT_EQ(r->OutgoingTraceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-" + r->trace.span_id.Hex() + "-01");

  r = t.Begin(RequestTelemetry::Transport::kHttp, "POST", "/x",
              Headers({{"traceparent", kUnsampledParent}}), 0);
  EXPECT_FALSE(r->export_span);
  EXPECT_EQ(r->OutgoingTraceparent().substr(53), "00");
}

TEST(Telemetry, RootsAreSampledAtTheRatio) {
  Telemetry none(TelemetryOptions{.sampling_ratio = 0.0}, Exporter(), nullptr);
  Telemetry all(TelemetryOptions{.sampling_ratio = 1.0}, Exporter(), nullptr);
  for (int i = 0; i < 50; ++i) {
    auto r = none.Begin(RequestTelemetry::Transport::kHttp, "GET", "/", Headers({}), 0);
    EXPECT_TRUE(r->has_trace);  // still a context to pass on, just not exported
    EXPECT_FALSE(r->export_span);
    EXPECT_TRUE(all.Begin(RequestTelemetry::Transport::kHttp, "GET", "/", Headers({}), 0)
                    ->export_span);
  }
  // An invalid traceparent starts a new trace.
  auto r = all.Begin(RequestTelemetry::Transport::kHttp, "GET", "/",
                     Headers({{"traceparent", "00-zz"}}), 0);
  EXPECT_FALSE(r->parent_span_id.IsValid());
  EXPECT_TRUE(r->trace.trace_id.IsValid());
}

TEST(Telemetry, WithoutTracingAnIncomingContextIsPassedOnUnchanged) {
  Telemetry t(TelemetryOptions{.access_log = true}, nullptr, nullptr);
  auto r = t.Begin(RequestTelemetry::Transport::kHttp, "GET", "/",
                   Headers({{"traceparent", kParent}}), 0);
  EXPECT_FALSE(r->export_span);
  EXPECT_EQ(r->OutgoingTraceparent(), kParent);
  r = t.Begin(RequestTelemetry::Transport::kHttp, "GET", "/", Headers({}), 0);
  EXPECT_EQ(r->OutgoingTraceparent(), "");
}

TEST(Telemetry, PayloadEventsFollowTheModeAndShareTheId) {
  TestSink sink;
  for (auto mode : {PayloadLogMode::kAll, PayloadLogMode::kRequest, PayloadLogMode::kResponse}) {
    size_t before = sink.count();
    auto logger = PayloadLogger::Create(PayloadLogOptions{.url = sink.url(), .mode = mode});
    ASSERT_TRUE(logger.ok());
    Telemetry t(TelemetryOptions{}, nullptr, std::move(logger).value());
    auto r = t.Begin(RequestTelemetry::Transport::kHttp, "POST", "/v2/models/m/infer",
                     Headers({{"x-request-id", "rid"}}), 2);
    t.OnInference(*r, "m", "1", std::make_shared<const std::string>("{}"), "application/json");
    t.Finish(std::move(r), 400, R"({"error":"bad"})", "application/json");
    // A request that never became an inference (a health check) logs nothing.
    auto h = t.Begin(RequestTelemetry::Transport::kHttp, "GET", "/v2/health/ready",
                     Headers({}), 0);
    t.Finish(std::move(h), 200, "{}", "application/json");
    t.Shutdown(Clock::now() + std::chrono::seconds(5));
    size_t want = mode == PayloadLogMode::kAll ? 2 : 1;
    auto got = sink.WaitFor(before + want);
    ASSERT_EQ(got.size(), before + want);
    int requests = 0, responses = 0;
    for (size_t i = before; i < got.size(); ++i) {
      auto& e = got[i];
      EXPECT_EQ(e.headers["ce-id"], "rid");
      if (e.headers["ce-type"] == "org.kubeflow.serving.inference.response") {
        ++responses;
        EXPECT_EQ(e.headers["ce-httpstatus"], "400");  // a failed request is logged too
        EXPECT_EQ(e.body, R"({"error":"bad"})");
      } else {
        ++requests;
        EXPECT_EQ(e.headers["ce-type"], "org.kubeflow.serving.inference.request");
        EXPECT_EQ(e.body, "{}");
      }
    }
    EXPECT_EQ(requests, mode == PayloadLogMode::kResponse ? 0 : 1);
    EXPECT_EQ(responses, mode == PayloadLogMode::kRequest ? 0 : 1);
  }
}

}  // namespace
}  // namespace quiver::observe
