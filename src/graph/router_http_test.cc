// GraphRouter over real loopback HTTP: a backend HttpServer, a front HttpServer handing requests
// to the router, and an HttpClient as the user. Covers what the engine tests cannot: the HTTP
// step caller, header propagation on the wire, health routes, readiness and shutdown.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <thread>

#include "graph/router.h"
#include "http/client.h"
#include "http/server.h"
#include "spec/resource.h"

namespace quiver::graph {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class Server {
 public:
  explicit Server(http::Handler handler) {
    http::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    options.drain_timeout = 2s;
    auto s = http::HttpServer::Create(options, std::move(handler));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~Server() {
    server_->Shutdown();
    thread_.join();
  }
  uint16_t port() const { return server_->port(); }

 private:
  std::unique_ptr<http::HttpServer> server_;
  std::thread thread_;
};

class Client {
 public:
  Client() : guard_(asio::make_work_guard(io_)), client_(io_, http::ClientOptions{}) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~Client() {
    std::promise<void> closed;
    asio::post(io_, [&] {
      client_.Close();
      closed.set_value();
    });
    closed.get_future().wait();
    guard_.reset();
    thread_.join();
  }
  http::ResponseMessage Send(uint16_t port, bhttp::verb verb, std::string target,
                             std::string body = "",
                             std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::Message m{verb, target, 11};
    for (auto& [k, v] : headers) m.set(k, v);
    m.body() = std::move(body);
    std::promise<http::ClientResult> promise;
    asio::post(io_, [&] {
      client_.Send(http::Backend::Make("127.0.0.1", port), std::move(m), 5s,
                   [&](http::ClientResult&& r) { promise.set_value(std::move(r)); });
    });
    http::ClientResult r = promise.get_future().get();
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    return std::move(r.response);
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  http::HttpClient client_;
  std::thread thread_;
};

spec::InferenceGraph Graph(const std::string& nodes) {
  std::string text = "apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceGraph\n"
                     "metadata: {name: g}\nspec:\n  nodes:\n" + nodes;
  auto manifests = spec::ParseManifests(text, "graph.yaml");
  EXPECT_TRUE(manifests.ok());
  Json doc = (*manifests)[0].doc;
  EXPECT_TRUE(spec::DefaultAndValidate(doc).ok());
  auto graph = spec::InferenceGraphFromJson(doc);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return *graph;
}

// A backend that answers {"got": body, "tenant": X-Tenant, "type": Content-Type} on /json and
// plain text on /text.
http::Handler Backend() {
  return [](http::Request&& request, http::Responder responder) {
    if (request.target() == "/text") {
      return responder.Send(
          http::Response{.status = 200, .body = "plain", .content_type = "text/plain"});
    }
    Json out = {{"got", request.body()},
                {"tenant", std::string(request.header("x-tenant"))},
                {"type", std::string(request.header("content-type"))}};
    responder.Send(http::Response{.status = 200, .body = out.dump()});
  };
}

struct Front {
  explicit Front(spec::InferenceGraph graph, RouterOptions options = {}) {
    auto r = GraphRouter::Create(std::move(graph), std::move(options));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    router = std::move(r).value();
    server.emplace([this](http::Request&& request, http::Responder responder) {
      router->Handle(std::move(request), std::move(responder));
    });
  }
  ~Front() {
    server.reset();
    router->Shutdown(0ms);
  }
  std::unique_ptr<GraphRouter> router;
  std::optional<Server> server;
};

TEST(GraphRouterHttp, SequenceOverHttpWithPropagatedHeaders) {
  Server backend(Backend());
  std::string url = "http://127.0.0.1:" + std::to_string(backend.port()) + "/json";
  RouterOptions options;
  options.propagate_headers = {"^X-Tenant$"};
  options.resolve_service = [url](const std::string&) -> StatusOr<std::string> { return url; };
  Front front(Graph("    root:\n      routerType: Sequence\n      steps:\n"
                    "      - {serviceName: first}\n"
                    "      - {serviceUrl: \"" + url + "\", data: $response}\n"),
              options);
  Client client;
  auto r = client.Send(front.server->port(), bhttp::verb::post, "/", R"({"x":1})",
                       {{"x-tenant", "acme"}, {"x-other", "no"}});
  EXPECT_EQ(r.result_int(), 200u);
  Json body = Json::parse(r.body());
  EXPECT_EQ(body["tenant"], "acme");
  EXPECT_EQ(body["type"], "application/json");
  // The second step got the first one's answer.
  Json first = Json::parse(body["got"].get<std::string>());
  EXPECT_EQ(first["got"], R"({"x":1})");
  EXPECT_EQ(front.router->stats().requests, 1u);
}

TEST(GraphRouterHttp, AStepsContentTypeReachesTheClient) {
  Server backend(Backend());
  Front front(Graph("    root:\n      routerType: Splitter\n      steps:\n"
                    "      - {serviceUrl: \"http://127.0.0.1:" + std::to_string(backend.port()) +
                    "/text\", weight: 100}\n"));
  Client client;
  auto r = client.Send(front.server->port(), bhttp::verb::post, "/v1/models/x:predict", "{}");
  EXPECT_EQ(r.body(), "plain");
  EXPECT_EQ(r[bhttp::field::content_type], "text/plain");
}

TEST(GraphRouterHttp, HealthRoutesReadinessAndShutdown) {
  Server backend(Backend());
  Front front(Graph("    root:\n      routerType: Sequence\n      steps:\n"
                    "      - {serviceUrl: \"http://127.0.0.1:" + std::to_string(backend.port()) +
                    "/json\"}\n"));
  Client client;
  uint16_t port = front.server->port();
  EXPECT_EQ(client.Send(port, bhttp::verb::get, "/readyz").result_int(), 200u);
  EXPECT_EQ(client.Send(port, bhttp::verb::get, "/v2/health/ready").body(), R"({"ready":true})");
  EXPECT_EQ(client.Send(port, bhttp::verb::get, "/v2/health/live").body(), R"({"live":true})");

  front.router->MarkNotReady();
  auto ready = client.Send(port, bhttp::verb::get, "/readyz");
  EXPECT_EQ(ready.result_int(), 503u);
  EXPECT_EQ(ready.body(), "shutting down\n");
  auto v2 = client.Send(port, bhttp::verb::get, "/v2/health/ready");
  EXPECT_EQ(v2.result_int(), 503u);
  EXPECT_EQ(Json::parse(v2.body()),
            Json::parse(R"({"error":"Router is not ready","cause":"shutting down"})"));
  // Not ready yet still serving: endpoints are still being told.
  EXPECT_EQ(client.Send(port, bhttp::verb::post, "/", "{}").result_int(), 200u);

  front.router->Shutdown(1s);
  auto after = client.Send(port, bhttp::verb::post, "/", "{}");
  EXPECT_EQ(after.result_int(), 503u);
  EXPECT_THAT(after.body(), HasSubstr("shutting down"));
}

TEST(GraphRouterHttp, CreateRejectsBadHeaderPatternsAndNamesTheGraph) {
  RouterOptions options;
  options.propagate_headers = {"X-(["};
  auto r = GraphRouter::Create(
      Graph("    root:\n      routerType: Sequence\n      steps:\n"
            "      - {serviceUrl: \"http://127.0.0.1:1/\"}\n"),
      options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("\"X-([\" is not a valid regular expression"));
  auto bad = GraphRouter::Create(Graph("    root:\n      routerType: Switch\n      steps:\n"
                                       "      - {serviceUrl: \"http://127.0.0.1:1/\"}\n"),
                                 RouterOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("InferenceGraph \"g\": spec.nodes.root.steps[0]"));
}

}  // namespace
}  // namespace quiver::graph
