#include "gateway/gateway.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace quiver::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// An in-process model server stand-in: answers "<name> <target>" and records the headers it
// saw; with hold(true) it keeps requests unanswered until Release.
class FakeBackend {
 public:
  explicit FakeBackend(std::string name) : name_(std::move(name)) {
    http::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    auto s = http::HttpServer::Create(options, [this](http::Request&& req, http::Responder r) {
      std::unique_lock<std::mutex> lock(mu_);
      last_headers_.clear();
      for (const auto& f : req.message) {
        last_headers_[std::string(f.name_string())] = std::string(f.value());
      }
      ++received_;
      std::string body = name_ + " " + std::string(req.target());
      cv_.notify_all();
      if (hold_) {
        held_.emplace_back(std::move(r), std::move(body));
        return;
      }
      lock.unlock();
      Answer(std::move(r), std::move(body));
    });
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    port_ = server_->port();
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~FakeBackend() { Stop(); }

  void Stop() {
    if (!server_) return;
    ReleaseAll();
    server_->Shutdown();
    thread_.join();
    server_.reset();
  }
  Endpoint endpoint() const { return {"127.0.0.1", port_}; }
  void hold(bool h) {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = h;
  }
  int received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }
  void WaitReceived(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, 10s, [&] { return received_ >= n; }))
        << name_ << " received " << received_ << ", expected " << n;
  }
  void ReleaseOne() {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_FALSE(held_.empty());
    auto [r, body] = std::move(held_.front());
    held_.erase(held_.begin());
    lock.unlock();
    Answer(std::move(r), std::move(body));
  }
  void ReleaseAll() {
    std::unique_lock<std::mutex> lock(mu_);
    auto held = std::move(held_);
    held_.clear();
    hold_ = false;
    lock.unlock();
    for (auto& [r, body] : held) Answer(std::move(r), std::move(body));
  }
  std::map<std::string, std::string> last_headers() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_headers_;
  }

 private:
  static void Answer(http::Responder r, std::string body) {
    http::Response res;
    res.body = std::move(body);
    res.content_type = "text/plain";
    res.headers.emplace_back("X-From-Backend", "yes");
    res.headers.emplace_back("Keep-Alive", "timeout=65");
    r.Send(std::move(res));
  }

  std::string name_;
  std::unique_ptr<http::HttpServer> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  int received_ = 0;
  std::vector<std::pair<http::Responder, std::string>> held_;
  std::map<std::string, std::string> last_headers_;
};

struct Answer {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
};

class GatewayTest : public ::testing::Test {
 protected:
  void StartGateway() {
    GatewayOptions options;
    options.server.host = "127.0.0.1";
    options.server.port = 0;
    options.server.io_threads = 2;
    options.client_threads = 2;
    options.queue_sweep_interval = 10ms;
    options.random = [this] { return random_.load(); };
    options.clock = [this] { return Clock::time_point() + 1000s + offset_.load() * 1ms; };
    auto g = Gateway::Create(options);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    gateway_ = std::move(g).value();
    thread_ = std::thread([this] { gateway_->Run(); });
  }
  void TearDown() override {
    if (gateway_) {
      gateway_->Shutdown();
      thread_.join();
    }
  }

  // One request on a new connection; `host` becomes the Host header.
  Answer Call(const std::string& host, const std::string& target,
              std::vector<std::pair<std::string, std::string>> headers = {},
              bhttp::verb method = bhttp::verb::post) {
    asio::io_context io;
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), gateway_->port()});
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, host);
    for (auto& [k, v] : headers) req.set(k, v);
    if (method == bhttp::verb::post) req.body() = "{\"inputs\":[]}";
    req.prepare_payload();
    bhttp::write(s, req);
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res;
    bhttp::read(s, buf, res);
    Answer a{static_cast<int>(res.result_int()), res.body(), {}};
    for (const auto& f : res) a.headers[std::string(f.name_string())] = std::string(f.value());
    return a;
  }
  std::future<Answer> CallAsync(const std::string& host, const std::string& target) {
    return std::async(std::launch::async, [this, host, target] { return Call(host, target); });
  }

  static ServiceRoute Service(const std::string& ns, const std::string& name,
                              std::vector<Endpoint> endpoints, int cc = 0, int queue = 0) {
    ServiceRoute s;
    s.namespace_name = ns;
    s.name = name;
    RevisionRoute r;
    r.name = name + "-predictor-00001";
    r.endpoints = std::move(endpoints);
    r.container_concurrency = cc;
    r.queue_depth = queue;
    s.component(Component::kPredictor) = {r};
    return s;
  }
  void SetTable(std::vector<ServiceRoute> services) {
    RouteTable t;
    t.services = std::move(services);
    auto s = gateway_->SetRouteTable(std::move(t));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  const RevisionStats* Stats(const std::vector<RevisionStats>& all, const std::string& rev) {
    for (const auto& s : all) {
      if (s.revision.revision == rev) return &s;
    }
    return nullptr;
  }

  std::atomic<double> random_{0.5};
  std::atomic<int64_t> offset_{0};
  std::unique_ptr<Gateway> gateway_;
  std::thread thread_;
};

TEST_F(GatewayTest, HostAndPathFormsReachTheSameBackend) {
  FakeBackend b("b1");
  StartGateway();
  SetTable({Service("default", "adder", {b.endpoint()})});
  auto host = Call("adder.default.example.com", "/v2/models/adder/infer?x=1");
  EXPECT_EQ(host.status, 200);
  EXPECT_EQ(host.body, "b1 /v2/models/adder/infer?x=1");
  EXPECT_EQ(host.headers["X-From-Backend"], "yes");
  EXPECT_EQ(host.headers["Content-Type"], "text/plain");
  auto path = Call("localhost", "/serving/default/adder/v2/models/adder/infer?x=1");
  EXPECT_EQ(path.status, 200);
  EXPECT_EQ(path.body, host.body);
  auto direct =
      Call("adder-predictor.default.example.com:8080", "/v2/health/ready", {}, bhttp::verb::get);
  EXPECT_EQ(direct.body, "b1 /v2/health/ready");
}

TEST_F(GatewayTest, UnknownServiceIs404AndServiceWithoutReadyReplicaIs503) {
  StartGateway();
  SetTable({Service("default", "cold", {})});
  auto unknown = Call("nope.default.example.com", "/v2/models/x/infer");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.body,
            "{\"error\":\"no InferenceService for host 'nope.default.example.com': expected "
            "{name}.{namespace}.example.com or the path /serving/{namespace}/{name}/...\"}");
  auto cold = Call("cold.default.example.com", "/v2/models/x/infer");
  EXPECT_EQ(cold.status, 503);
  EXPECT_NE(cold.body.find("InferenceService default/cold is not ready: predictor revision "
                           "cold-predictor-00001 has no ready replica"),
            std::string::npos)
      << cold.body;
}

TEST_F(GatewayTest, ExplainGoesToTheExplainerAndOtherPathsToTheTransformer) {
  FakeBackend predictor("predictor");
  FakeBackend transformer("transformer");
  FakeBackend explainer("explainer");
  StartGateway();
  auto s = Service("default", "iris", {predictor.endpoint()});
  RevisionRoute t;
  t.name = "iris-transformer-00001";
  t.endpoints = {transformer.endpoint()};
  s.component(Component::kTransformer) = {t};
  RevisionRoute e;
  e.name = "iris-explainer-00001";
  e.endpoints = {explainer.endpoint()};
  s.component(Component::kExplainer) = {e};
  SetTable({s, Service("default", "plain", {predictor.endpoint()})});
  EXPECT_EQ(Call("iris.default.example.com", "/v1/models/iris:explain").body,
            "explainer /v1/models/iris:explain");
  EXPECT_EQ(Call("iris.default.example.com", "/v1/models/iris:predict").body,
            "transformer /v1/models/iris:predict");
  EXPECT_EQ(Call("iris-predictor.default.example.com", "/v1/models/iris:predict").body,
            "predictor /v1/models/iris:predict");
  // Without an explainer the predictor gets :explain (its server answers 501), as in KServe.
  EXPECT_EQ(Call("plain.default.example.com", "/v1/models/plain:explain").body,
            "predictor /v1/models/plain:explain");
  auto missing = Call("plain-explainer.default.example.com", "/v1/models/plain:explain");
  EXPECT_EQ(missing.status, 404);
}

TEST_F(GatewayTest, HopByHopHeadersAreDroppedAndForwardingHeadersSet) {
  FakeBackend b("b");
  StartGateway();
  SetTable({Service("default", "adder", {b.endpoint()})});
  auto a = Call("adder.default.example.com", "/v2/models/adder/infer",
                {{"Connection", "keep-alive, X-Hop"},
                 {"X-Hop", "secret"},
                 {"TE", "trailers"},
                 {"Proxy-Authorization", "Basic x"},
                 {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
                 {"X-Request-Id", "req-42"},
                 {"Authorization", "Bearer t"}});
  ASSERT_EQ(a.status, 200);
  auto h = b.last_headers();
  EXPECT_EQ(h.count("X-Hop"), 0u);
  EXPECT_EQ(h.count("TE"), 0u);
  EXPECT_EQ(h.count("Proxy-Authorization"), 0u);
  EXPECT_EQ(h["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(h["X-Request-Id"], "req-42");
  EXPECT_EQ(h["Authorization"], "Bearer t");
  EXPECT_EQ(h["x-forwarded-host"], "adder.default.example.com");
  EXPECT_EQ(h["Host"], "adder.default.example.com");
  // The backend's Keep-Alive header describes its connection to the gateway, not ours.
  EXPECT_EQ(a.headers.count("Keep-Alive"), 0u);
  Call("adder.default.example.com", "/v2/models/adder/infer");
  EXPECT_EQ(b.last_headers()["x-request-id"].size(), 32u);  // generated when absent
}

TEST_F(GatewayTest, TrafficSplitFollowsTheRandomValueAndTagsPickTheirRevision) {
  FakeBackend old_rev("old");
  FakeBackend new_rev("new");
  StartGateway();
  ServiceRoute s;
  s.namespace_name = "default";
  s.name = "iris";
  RevisionRoute r1;
  r1.name = "iris-predictor-00001";
  r1.percent = 90;
  r1.tags = {"prev"};
  r1.endpoints = {old_rev.endpoint()};
  RevisionRoute r2;
  r2.name = "iris-predictor-00002";
  r2.percent = 10;
  r2.tags = {"latest"};
  r2.endpoints = {new_rev.endpoint()};
  s.component(Component::kPredictor) = {r1, r2};
  SetTable({s});
  random_ = 0.899;
  EXPECT_EQ(Call("iris.default.example.com", "/").body, "old /");
  random_ = 0.9;
  EXPECT_EQ(Call("iris.default.example.com", "/").body, "new /");
  random_ = 0.95;
  EXPECT_EQ(Call("prev-iris.default.example.com", "/").body, "old /");
  random_ = 0.0;
  EXPECT_EQ(Call("latest-iris.default.example.com", "/").body, "new /");
}

TEST_F(GatewayTest, LeastOutstandingSendsTheNextRequestToTheIdleReplica) {
  FakeBackend a("a");
  FakeBackend b("b");
  StartGateway();
  SetTable({Service("default", "adder", {a.endpoint(), b.endpoint()})});
  a.hold(true);
  b.hold(true);
  auto first = CallAsync("adder.default.example.com", "/1");
  while (a.received() + b.received() < 1) std::this_thread::yield();
  FakeBackend& busy = a.received() == 1 ? a : b;
  FakeBackend& idle = a.received() == 1 ? b : a;
  // Whatever the round robin says, the replica already holding a request is not chosen.
  for (int i = 0; i < 3; ++i) {
    idle.hold(false);
    EXPECT_EQ(Call("adder.default.example.com", "/next").status, 200);
    EXPECT_EQ(busy.received(), 1);
  }
  EXPECT_EQ(idle.received(), 3);
  busy.ReleaseAll();
  EXPECT_EQ(first.get().status, 200);
}

TEST_F(GatewayTest, ContainerConcurrencyQueuesThenRejectsWhenTheQueueIsFull) {
  FakeBackend b("b");
  b.hold(true);
  StartGateway();
  SetTable({Service("default", "slow", {b.endpoint()}, /*cc=*/1, /*queue=*/1)});
  auto r1 = CallAsync("slow.default.example.com", "/1");
  b.WaitReceived(1);
  auto r2 = CallAsync("slow.default.example.com", "/2");
  // r2 waits in the gateway: the backend never holds more than containerConcurrency.
  for (;;) {
    auto stats = gateway_->Snapshot();
    const RevisionStats* s = Stats(stats, "slow-predictor-00001");
    ASSERT_NE(s, nullptr);
    if (s->queued == 1) {
      EXPECT_EQ(s->in_flight, 1);
      break;
    }
    std::this_thread::yield();
  }
  auto r3 = Call("slow.default.example.com", "/3");
  EXPECT_EQ(r3.status, 503);
  EXPECT_NE(r3.body.find("every replica is at containerConcurrency 1 and 1 requests are "
                         "already queued"),
            std::string::npos)
      << r3.body;
  EXPECT_EQ(b.received(), 1);
  b.ReleaseOne();
  EXPECT_EQ(r1.get().body, "b /1");
  b.WaitReceived(2);
  b.ReleaseOne();
  EXPECT_EQ(r2.get().body, "b /2");
  auto stats = gateway_->Snapshot();
  const RevisionStats* s = Stats(stats, "slow-predictor-00001");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->completed, 2u);
  EXPECT_EQ(s->in_flight, 0);
  EXPECT_EQ(s->queued, 0);
}

TEST_F(GatewayTest, QueuedRequestPastItsTimeoutGets504) {
  FakeBackend b("b");
  b.hold(true);
  StartGateway();
  auto s = Service("default", "slow", {b.endpoint()}, 1, 5);
  s.component(Component::kPredictor)[0].timeout = 1000ms;
  SetTable({s});
  auto r1 = CallAsync("slow.default.example.com", "/1");
  b.WaitReceived(1);
  auto r2 = CallAsync("slow.default.example.com", "/2");
  while (Stats(gateway_->Snapshot(), "slow-predictor-00001")->queued != 1) {
    std::this_thread::yield();
  }
  offset_ = 999;  // the injected clock: just before the timeout nothing happens
  gateway_->ExpireQueued();
  EXPECT_EQ(r2.wait_for(20ms), std::future_status::timeout);
  offset_ = 1000;
  gateway_->ExpireQueued();
  auto a2 = r2.get();
  EXPECT_EQ(a2.status, 504);
  EXPECT_NE(a2.body.find("timed out waiting for a free replica"), std::string::npos) << a2.body;
  b.ReleaseAll();
  EXPECT_EQ(r1.get().status, 200);
}

TEST_F(GatewayTest, RefusedReplicaIsRetriedOnAnotherAndAllDeadIs502) {
  FakeBackend live("live");
  FakeBackend dead("dead");
  Endpoint dead_endpoint = dead.endpoint();
  dead.Stop();
  StartGateway();
  SetTable({Service("default", "adder", {dead_endpoint, live.endpoint()})});
  for (int i = 0; i < 6; ++i) {
    auto a = Call("adder.default.example.com", "/x");
    EXPECT_EQ(a.status, 200) << a.body;
    EXPECT_EQ(a.body, "live /x");
  }
  SetTable({Service("default", "adder", {dead_endpoint})});
  auto a = Call("adder.default.example.com", "/x");
  EXPECT_EQ(a.status, 502);
  EXPECT_NE(a.body.find("backend " + dead_endpoint.ToString()), std::string::npos) << a.body;
}

TEST_F(GatewayTest, DrainedEndpointGetsNoNewRequestsAndReportsWhenIdle) {
  FakeBackend a("a");
  FakeBackend b("b");
  StartGateway();
  SetTable({Service("default", "adder", {a.endpoint(), b.endpoint()})});
  a.hold(true);
  b.hold(true);
  auto first = CallAsync("adder.default.example.com", "/1");
  while (a.received() + b.received() < 1) std::this_thread::yield();
  FakeBackend& busy = a.received() == 1 ? a : b;
  FakeBackend& other = a.received() == 1 ? b : a;
  std::promise<void> idle;
  auto idle_future = idle.get_future();
  RevisionRef ref{"default", "adder", Component::kPredictor, "adder-predictor-00001"};
  ASSERT_TRUE(gateway_->DrainEndpoint(ref, busy.endpoint(), [&] { idle.set_value(); }).ok());
  other.hold(false);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Call("adder.default.example.com", "/n").status, 200);
  EXPECT_EQ(busy.received(), 1);
  EXPECT_EQ(idle_future.wait_for(20ms), std::future_status::timeout);
  busy.ReleaseAll();
  EXPECT_EQ(first.get().status, 200);
  EXPECT_EQ(idle_future.wait_for(5s), std::future_status::ready);
  auto bad = gateway_->DrainEndpoint(ref, Endpoint{"127.0.0.1", 1}, [] {});
  EXPECT_EQ(bad.code(), StatusCode::kNotFound);
  EXPECT_NE(bad.message().find("127.0.0.1:1"), std::string::npos);
}

TEST_F(GatewayTest, InvalidTableIsRejectedAndTheOldOneKept) {
  FakeBackend b("b");
  StartGateway();
  SetTable({Service("default", "adder", {b.endpoint()})});
  RouteTable bad;
  bad.services.push_back(Service("default", "adder", {b.endpoint()}));
  bad.services[0].component(Component::kPredictor)[0].percent = 50;
  auto s = gateway_->SetRouteTable(bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Call("adder.default.example.com", "/x").status, 200);
}

TEST_F(GatewayTest, ScaleFromZeroHoldsRequestsAsksForAReplicaAndSendsThemWhenOneIsReady) {
  FakeBackend b("b");
  std::mutex mu;
  std::vector<RevisionRef> demands;
  StartGateway();
  gateway_->SetDemandCallback([&](const RevisionRef& ref) {
    std::lock_guard<std::mutex> lock(mu);
    demands.push_back(ref);
  });
  auto s = Service("default", "cold", {});
  s.component(Component::kPredictor)[0].scale_from_zero = true;
  SetTable({s});
  std::vector<std::future<Answer>> calls;
  for (int i = 0; i < 3; ++i) calls.push_back(CallAsync("cold.default.example.com", "/x"));
  while (Stats(gateway_->Snapshot(), "cold-predictor-00001")->queued != 3) {
    std::this_thread::yield();
  }
  // Each held request asks (right after it is queued); the control plane coalesces.
  auto demand_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return demands.size();
  };
  for (int i = 0; i < 10'000 && demand_count() < 3; ++i) std::this_thread::sleep_for(1ms);
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(demands.size(), 3u);
    EXPECT_EQ(demands[0], (RevisionRef{"default", "cold", Component::kPredictor,
                                       "cold-predictor-00001"}));
  }
  EXPECT_EQ(calls[0].wait_for(20ms), std::future_status::timeout);
  // A replica became ready: the held requests leave at once, none is lost.
  s.component(Component::kPredictor)[0].endpoints = {b.endpoint()};
  SetTable({s});
  for (auto& c : calls) {
    auto a = c.get();
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(a.body, "b /x");
  }
  EXPECT_EQ(b.received(), 3);
  // Scaling back to zero: the last replica drains; a new request waits (and asks) instead of
  // being refused.
  ASSERT_TRUE(gateway_
                  ->DrainEndpoint({"default", "cold", Component::kPredictor,
                                   "cold-predictor-00001"},
                                  b.endpoint(), [] {})
                  .ok());
  auto held = CallAsync("cold.default.example.com", "/y");
  while (Stats(gateway_->Snapshot(), "cold-predictor-00001")->queued != 1) {
    std::this_thread::yield();
  }
  for (int i = 0; i < 10'000 && demand_count() < 4; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(demand_count(), 4u);
  FakeBackend c("c");
  s.component(Component::kPredictor)[0].endpoints = {c.endpoint()};
  SetTable({s});
  EXPECT_EQ(held.get().body, "c /y");
}

TEST_F(GatewayTest, ScaleFromZeroFullQueueAndTimeoutAre503WithTheReason) {
  StartGateway();
  auto s = Service("default", "cold", {});
  s.component(Component::kPredictor)[0].scale_from_zero = true;
  s.component(Component::kPredictor)[0].activator_queue_depth = 1;
  s.component(Component::kPredictor)[0].timeout = 1000ms;
  SetTable({s});
  auto r1 = CallAsync("cold.default.example.com", "/1");
  while (Stats(gateway_->Snapshot(), "cold-predictor-00001")->queued != 1) {
    std::this_thread::yield();
  }
  auto r2 = Call("cold.default.example.com", "/2");
  EXPECT_EQ(r2.status, 503);
  EXPECT_NE(r2.body.find("is scaling from zero and 1 requests are already waiting"),
            std::string::npos)
      << r2.body;
  offset_ = 1000;
  gateway_->ExpireQueued();
  auto a1 = r1.get();
  EXPECT_EQ(a1.status, 503);
  EXPECT_NE(a1.body.find("to get a ready replica (scaling from zero)"), std::string::npos)
      << a1.body;
  // Without scale_from_zero a revision with no replica is refused at once.
  SetTable({Service("default", "cold", {})});
  EXPECT_EQ(Call("cold.default.example.com", "/3").status, 503);
}

TEST_F(GatewayTest, ShutdownAnswersHeldRequestsAtOnce) {
  StartGateway();
  auto s = Service("default", "cold", {});
  s.component(Component::kPredictor)[0].scale_from_zero = true;
  SetTable({s});
  auto held = CallAsync("cold.default.example.com", "/1");
  while (Stats(gateway_->Snapshot(), "cold-predictor-00001")->queued != 1) {
    std::this_thread::yield();
  }
  gateway_->Shutdown();
  auto a = held.get();
  EXPECT_EQ(a.status, 503);
  EXPECT_NE(a.body.find("the gateway is shutting down"), std::string::npos) << a.body;
}

TEST_F(GatewayTest, SnapshotIntegratesRequestsPresentOverTheInjectedClock) {
  FakeBackend b("b");
  b.hold(true);
  StartGateway();
  SetTable({Service("default", "m", {b.endpoint()})});
  auto r1 = CallAsync("m.default.example.com", "/1");
  b.WaitReceived(1);
  offset_ = 2000;  // one request present for 2 s
  auto during_all = gateway_->Snapshot();  // Stats points into it
  auto during = Stats(during_all, "m-predictor-00001");
  EXPECT_DOUBLE_EQ(during->request_seconds, 2.0);
  EXPECT_EQ(during->arrivals, 1u);
  auto r2 = CallAsync("m.default.example.com", "/2");
  b.WaitReceived(2);
  offset_ = 3000;  // then two for 1 s
  b.ReleaseAll();
  EXPECT_EQ(r1.get().status, 200);
  EXPECT_EQ(r2.get().status, 200);
  while (Stats(gateway_->Snapshot(), "m-predictor-00001")->completed != 2) {
    std::this_thread::yield();
  }
  offset_ = 9000;  // nothing present since: the integral stays
  auto after_all = gateway_->Snapshot();
  auto after = Stats(after_all, "m-predictor-00001");
  EXPECT_DOUBLE_EQ(after->request_seconds, 4.0);
  EXPECT_EQ(after->arrivals, 2u);
}

TEST_F(GatewayTest, ComponentTagHostsAndTwoTagsOnOneRevision) {
  FakeBackend only("only");
  StartGateway();
  ServiceRoute s = Service("default", "iris", {only.endpoint()});
  s.component(Component::kPredictor)[0].tags = {"latest", "prev"};
  SetTable({s});
  EXPECT_EQ(Call("latest-iris-predictor.default.example.com", "/").body, "only /");
  EXPECT_EQ(Call("prev-iris-predictor.default.example.com", "/").body, "only /");
  EXPECT_EQ(Call("prev-iris.default.example.com", "/").body, "only /");
  EXPECT_EQ(Call("old-iris.default.example.com", "/").status, 404);
  s.component(Component::kPredictor)[0].tags = {"prev"};
  SetTable({s});
  EXPECT_EQ(Call("latest-iris-predictor.default.example.com", "/").status, 404);
}

TEST_F(GatewayTest, GraphHostsGoToTheGraphHandlerAndServicesKeepTheirHosts) {
  FakeBackend svc("svc");
  StartGateway();
  auto calls = std::make_shared<std::atomic<int>>(0);
  auto handler = std::make_shared<const GraphHandler>(
      [calls](http::Request&& req, http::Responder r) {
        ++*calls;
        http::Response res;
        res.body = "graph " + std::string(req.target());
        r.Send(std::move(res));
      });
  RouteTable t;
  t.services = {Service("default", "iris", {svc.endpoint()})};
  t.graphs = {GraphRoute{"default", "pipeline", handler}, GraphRoute{"default", "iris", handler}};
  ASSERT_TRUE(gateway_->SetRouteTable(t).ok());
  EXPECT_EQ(Call("pipeline.default.example.com", "/v1/models/x:predict").body,
            "graph /v1/models/x:predict");
  EXPECT_EQ(Call("localhost", "/serving/default/pipeline/anything").body, "graph /anything");
  // An InferenceService of the same name keeps its host.
  EXPECT_EQ(Call("iris.default.example.com", "/").body, "svc /");
  EXPECT_EQ(calls->load(), 2);
  t.graphs.push_back(GraphRoute{"default", "pipeline", handler});
  auto dup = gateway_->SetRouteTable(t);
  EXPECT_FALSE(dup.ok());
  EXPECT_NE(dup.message().find("graphs[2]: graph default/pipeline appears twice"),
            std::string::npos)
      << dup.ToString();
  t.graphs.pop_back();
  t.graphs.push_back(GraphRoute{"default", "empty", nullptr});
  EXPECT_NE(gateway_->SetRouteTable(t).message().find("graphs[2].handler: must be set"),
            std::string::npos);
}

}  // namespace
}  // namespace quiver::gateway
