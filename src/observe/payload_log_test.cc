// Payload logging: CloudEvents headers and JSON lines, and delivery to a real local HTTP sink
// and to a file, with retries, drops and a bounded shutdown.
#include "observe/payload_log.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "observe/test_sink.h"

namespace quiver::observe {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::map<std::string, std::string> AsMap(const HttpHeaders& h) {
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : h) {
    EXPECT_EQ(m.count(k), 0u) << "duplicate header " << k;
    m[k] = v;
  }
  return m;
}

PayloadEvent Event(bool response, std::string body = R"({"inputs": [1, 2]})") {
  PayloadEvent e;
  e.response = response;
  e.id = "event-1";
  e.time = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)) +
           std::chrono::microseconds(123456);
  e.model_name = "add_sub";
  e.content_type = "application/json";
  e.body = std::make_shared<const std::string>(std::move(body));
  e.status = response ? 200 : 0;
  e.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  return e;
}

TEST(CloudEventHeaders, RequestEventInBinaryMode) {
  PayloadLogOptions o;
  o.source = "http://localhost:8080/";
  o.namespace_name = "team-a";
  auto h = AsMap(CloudEventHeaders(Event(false), o));
  EXPECT_EQ(h["Content-Type"], "application/json");
  EXPECT_EQ(h["ce-specversion"], "1.0");
  EXPECT_EQ(h["ce-id"], "event-1");
  EXPECT_EQ(h["ce-source"], "http://localhost:8080/");
  EXPECT_EQ(h["ce-type"], "org.kubeflow.serving.inference.request");
  EXPECT_EQ(h["ce-time"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(h["ce-inferenceservicename"], "add_sub");  // the model's name by default
  EXPECT_EQ(h["ce-namespace"], "team-a");
  EXPECT_EQ(h["ce-component"], "predictor");
  EXPECT_EQ(h["ce-endpoint"], "default");
  EXPECT_EQ(h.count("ce-httpstatus"), 0u);
  EXPECT_EQ(h["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ(h.count("tracestate"), 0u);
}

TEST(CloudEventHeaders, ResponseEventCarriesTheStatusAndTheSameId) {
  PayloadLogOptions o;
  o.inference_service_name = "my-isvc";
  PayloadEvent e = Event(true);
  e.status = 500;
  e.content_type = "application/octet-stream";
  e.tracestate = "k=v";
  auto h = AsMap(CloudEventHeaders(e, o));
  EXPECT_EQ(h["ce-type"], "org.kubeflow.serving.inference.response");
  EXPECT_EQ(h["ce-id"], "event-1");
  EXPECT_EQ(h["ce-httpstatus"], "500");
  EXPECT_EQ(h["ce-inferenceservicename"], "my-isvc");
  EXPECT_EQ(h["Content-Type"], "application/octet-stream");
  EXPECT_EQ(h["tracestate"], "k=v");
}

TEST(CloudEventJsonLine, EmbedsAJsonBodyMinified) {
  PayloadLogOptions o;
  std::string line = CloudEventJsonLine(Event(true, "{\n  \"outputs\": [ 3 ]\n}"), o);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
  EXPECT_EQ(std::string_view(doc["specversion"]), "1.0");
  EXPECT_EQ(std::string_view(doc["type"]), "org.kubeflow.serving.inference.response");
  EXPECT_EQ(std::string_view(doc["id"]), "event-1");
  EXPECT_EQ(std::string_view(doc["datacontenttype"]), "application/json");
  EXPECT_EQ(std::string_view(doc["inferenceservicename"]), "add_sub");
  EXPECT_EQ(int64_t(doc["httpstatus"]), 200);
  EXPECT_EQ(int64_t(doc["data"]["outputs"].at(0)), 3);
  EXPECT_NE(line.find(R"("data":{"outputs":[3]})"), std::string::npos) << line;
}

TEST(CloudEventJsonLine, OtherBodiesAreBase64) {
  PayloadLogOptions o;
  PayloadEvent e = Event(false, std::string("\x00\x01\xffhi", 5));
  e.content_type = "application/octet-stream";
  std::string line = CloudEventJsonLine(e, o);
  EXPECT_NE(line.find(R"("data_base64":"AAH/aGk=")"), std::string::npos) << line;
  // A body that claims JSON but is not valid JSON is not embedded either.
  line = CloudEventJsonLine(Event(false, "{not json"), o);
  EXPECT_NE(line.find(R"("data_base64":"e25vdCBqc29u")"), std::string::npos) << line;
}

TEST(PayloadLogMode, KServeNames) {
  EXPECT_EQ(*ParsePayloadLogMode("all"), PayloadLogMode::kAll);
  EXPECT_EQ(*ParsePayloadLogMode("request"), PayloadLogMode::kRequest);
  EXPECT_EQ(*ParsePayloadLogMode("response"), PayloadLogMode::kResponse);
  EXPECT_FALSE(ParsePayloadLogMode("both").ok());
}

TEST(PayloadLogger, RejectsUnusableUrls) {
  EXPECT_FALSE(PayloadLogger::Create(PayloadLogOptions{.url = "ftp://x"}).ok());
  EXPECT_FALSE(PayloadLogger::Create(PayloadLogOptions{.url = "file://relative/path"}).ok());
  EXPECT_FALSE(PayloadLogger::Create(PayloadLogOptions{.url = "file:///no/such/dir/x"}).ok());
}

TEST(PayloadLogger, DeliversCloudEventsToAnHttpSink) {
  TestSink sink;
  auto logger = PayloadLogger::Create(PayloadLogOptions{.url = sink.url("/events")});
  ASSERT_TRUE(logger.ok()) << logger.status().message();
  EXPECT_TRUE((*logger)->Log(Event(false)));
  EXPECT_TRUE((*logger)->Log(Event(true, R"({"outputs":[3]})")));
  auto got = sink.WaitFor(2);
  (*logger)->Shutdown(Clock::now() + std::chrono::seconds(5));
  ASSERT_EQ(got.size(), 2u);
  std::map<std::string, TestSink::Received> by_type;
  for (auto& r : got) by_type[r.headers["ce-type"]] = r;
  auto& req = by_type["org.kubeflow.serving.inference.request"];
  auto& res = by_type["org.kubeflow.serving.inference.response"];
  EXPECT_EQ(req.body, R"({"inputs": [1, 2]})");
  EXPECT_EQ(res.body, R"({"outputs":[3]})");
  EXPECT_EQ(req.headers["ce-id"], res.headers["ce-id"]);
  EXPECT_EQ(req.headers["content-type"], "application/json");
  EXPECT_EQ(res.headers["ce-httpstatus"], "200");
  EXPECT_EQ(req.headers["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_EQ((*logger)->delivered(), 2u);
  EXPECT_EQ((*logger)->dropped(), 0u);
}

TEST(PayloadLogger, RetriesWithBackoffUntilTheSinkTakesTheEvent) {
  TestSink sink;
  sink.AnswerWith({503, 502});
  PayloadLogOptions o{.url = sink.url()};
  o.workers = 1;
  o.retry = RetryPolicy{.max_retries = 3, .initial_backoff = milliseconds(20)};
  auto logger = PayloadLogger::Create(o);
  ASSERT_TRUE(logger.ok());
  auto start = Clock::now();
  (*logger)->Log(Event(false));
  sink.WaitFor(3);
  auto took = Clock::now() - start;
  (*logger)->Shutdown(Clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(sink.count(), 3u);
  EXPECT_GE(took, milliseconds(55));  // backoffs of 20 and 40 ms
  EXPECT_EQ((*logger)->delivered(), 1u);
  EXPECT_EQ((*logger)->failed(), 0u);
}

TEST(PayloadLogger, CountsAFailureWhenRetriesRunOutOrTheSinkRefuses) {
  TestSink sink;
  sink.AnswerWith({503, 503, 400});
  PayloadLogOptions o{.url = sink.url()};
  o.workers = 1;
  o.retry = RetryPolicy{.max_retries = 1, .initial_backoff = milliseconds(1)};
  auto logger = PayloadLogger::Create(o);
  ASSERT_TRUE(logger.ok());
  (*logger)->Log(Event(false));  // 503, 503: retries exhausted
  (*logger)->Log(Event(true));   // 400: not retried
  sink.WaitFor(3);
  (*logger)->Shutdown(Clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(sink.count(), 3u);
  EXPECT_EQ((*logger)->failed(), 2u);
  EXPECT_EQ((*logger)->delivered(), 0u);
}

TEST(PayloadLogger, AStuckSinkNeverBlocksLogAndOverflowIsDropped) {
  TestSink sink;
  sink.Hold();
  PayloadLogOptions o{.url = sink.url()};
  o.workers = 1;
  o.max_queue = 3;
  auto logger = PayloadLogger::Create(o);
  ASSERT_TRUE(logger.ok());
  (*logger)->Log(Event(false));
  sink.WaitFor(1);  // the worker is now waiting on the sink (for up to o.timeout, 5 s)
  std::vector<PayloadEvent> events(200, Event(false));
  auto start = Clock::now();
  int accepted = 0;
  for (auto& e : events) accepted += (*logger)->Log(std::move(e));
  // Generous for sanitizers on a busy machine, far below the sink's 5 s.
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ((*logger)->dropped(), 197u);
  // The shutdown deadline bounds the flush although the sink never answers: the stuck call is
  // aborted and what is still queued is dropped.
  start = Clock::now();
  (*logger)->Shutdown(Clock::now() + milliseconds(200));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ((*logger)->dropped(), 200u);
  EXPECT_EQ((*logger)->failed(), 1u);
  sink.Release();
}

TEST(PayloadLogger, AQueueByteLimitDropsLargeEvents) {
  TestSink sink;
  sink.Hold();
  PayloadLogOptions o{.url = sink.url()};
  o.workers = 1;
  o.max_queue_bytes = 1000;
  auto logger = PayloadLogger::Create(o);
  ASSERT_TRUE(logger.ok());
  (*logger)->Log(Event(false));
  sink.WaitFor(1);
  EXPECT_TRUE((*logger)->Log(Event(false, std::string(600, 'x'))));
  EXPECT_FALSE((*logger)->Log(Event(false, std::string(600, 'x'))));
  (*logger)->Shutdown(Clock::now() + milliseconds(100));
  sink.Release();
}

TEST(PayloadLogger, AppendsJsonLinesToAFile) {
  auto path = std::filesystem::temp_directory_path() /
              ("quiver-payload-" + std::to_string(::getpid()) + ".jsonl");
  std::filesystem::remove(path);
  {
    auto logger = PayloadLogger::Create(PayloadLogOptions{.url = "file://" + path.string()});
    ASSERT_TRUE(logger.ok()) << logger.status().message();
    (*logger)->Log(Event(false));
    (*logger)->Log(Event(true, R"({"outputs":[3]})"));
    (*logger)->Log(Event(true, "not json"));
    (*logger)->Shutdown(Clock::now() + std::chrono::seconds(5));
    EXPECT_EQ((*logger)->delivered(), 3u);
  }
  std::ifstream in(path);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  std::filesystem::remove(path);
  ASSERT_EQ(lines.size(), 3u);
  simdjson::dom::parser parser;
  for (const auto& l : lines) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(l).get(doc), simdjson::SUCCESS) << l;
    EXPECT_EQ(std::string_view(doc["id"]), "event-1");
  }
  EXPECT_NE(lines[0].find(R"("data":{"inputs":[1,2]})"), std::string::npos);
  EXPECT_NE(lines[2].find("data_base64"), std::string::npos);
}

}  // namespace
}  // namespace quiver::observe
