#include "gateway/route_table.h"

#include <gtest/gtest.h>

#include "gateway/proxy_headers.h"
#include "gateway/route_index.h"

namespace quiver::gateway {
namespace {

RevisionRoute Rev(std::string name, int percent, std::string tag = "") {
  RevisionRoute r;
  r.name = std::move(name);
  r.percent = percent;
  if (!tag.empty()) r.tags.push_back(std::move(tag));
  r.endpoints = {{"127.0.0.1", 9000}};
  return r;
}

TEST(PickRevisionTest, SplitsExactlyAtTheCumulativeBoundaries) {
  Traffic t = {Rev("a", 10), Rev("b", 90)};
  EXPECT_EQ(PickRevision(t, 0.0), 0);
  EXPECT_EQ(PickRevision(t, 0.0999999), 0);
  EXPECT_EQ(PickRevision(t, 0.1), 1);
  EXPECT_EQ(PickRevision(t, 0.5), 1);
  EXPECT_EQ(PickRevision(t, 0.9999999), 1);
  EXPECT_EQ(PickRevision(t, 1.0), 1);  // out of range stays on the last revision
}

TEST(PickRevisionTest, ZeroPercentRevisionsAreNeverPicked) {
  Traffic t = {Rev("tagged", 0, "latest"), Rev("a", 25), Rev("b", 0), Rev("c", 75)};
  EXPECT_EQ(PickRevision(t, 0.0), 1);
  EXPECT_EQ(PickRevision(t, 0.2499), 1);
  EXPECT_EQ(PickRevision(t, 0.25), 3);
  EXPECT_EQ(PickRevision(t, 0.99), 3);
  EXPECT_EQ(PickRevision(Traffic{Rev("x", 0)}, 0.5), -1);
  EXPECT_EQ(PickRevision(Traffic{}, 0.5), -1);
}

TEST(PickRevisionTest, ThreeWaySplit) {
  Traffic t = {Rev("a", 20), Rev("b", 30), Rev("c", 50)};
  EXPECT_EQ(PickRevision(t, 0.19), 0);
  EXPECT_EQ(PickRevision(t, 0.2), 1);
  EXPECT_EQ(PickRevision(t, 0.49), 1);
  EXPECT_EQ(PickRevision(t, 0.5), 2);
}

ServiceRoute Service(std::string ns, std::string name) {
  ServiceRoute s;
  s.namespace_name = std::move(ns);
  s.name = std::move(name);
  s.component(Component::kPredictor) = {Rev(s.name + "-predictor-00001", 100)};
  return s;
}

TEST(ValidateRouteTableTest, NamesTheBadField) {
  RouteTable t;
  t.services.push_back(Service("default", "iris"));
  EXPECT_TRUE(ValidateRouteTable(t).ok());

  auto bad = t;
  bad.services[0].component(Component::kPredictor)[0].percent = 120;
  auto s = ValidateRouteTable(bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("services[0].predictor[0].percent"), std::string::npos) << s.message();

  bad = t;
  bad.services[0].component(Component::kPredictor).push_back(Rev("two", 10));
  s = ValidateRouteTable(bad);
  EXPECT_NE(s.message().find("sum to 100, got 110"), std::string::npos) << s.message();

  bad = t;
  bad.services[0].name = "Iris";
  s = ValidateRouteTable(bad);
  EXPECT_NE(s.message().find("services[0].name: 'Iris'"), std::string::npos) << s.message();

  bad = t;
  bad.services.push_back(Service("default", "iris"));
  s = ValidateRouteTable(bad);
  EXPECT_NE(s.message().find("appears twice"), std::string::npos) << s.message();

  bad = t;
  bad.services[0].component(Component::kPredictor)[0].container_concurrency = -1;
  s = ValidateRouteTable(bad);
  EXPECT_NE(s.message().find("predictor[0].container_concurrency"), std::string::npos);
}

TEST(RouteTableFromJsonTest, ReadsEveryFieldAndNamesErrorsByPath) {
  auto t = RouteTableFromJson(R"({"services":[{"namespace":"ns1","name":"iris",
      "predictor":[{"revision":"r1","percent":90,"tag":"prev","endpoints":["127.0.0.1:81"]},
                   {"revision":"r2","percent":10,"tag":"latest","endpoints":["127.0.0.1:82",
                    "10.0.0.2:83"],"container_concurrency":2,"queue_depth":5,
                    "timeout_seconds":1.5}],
      "explainer":[{"revision":"e1","percent":100,"endpoints":[]}]}]})");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->services.size(), 1u);
  const auto& s = t->services[0];
  ASSERT_EQ(s.component(Component::kPredictor).size(), 2u);
  const auto& r2 = s.component(Component::kPredictor)[1];
  EXPECT_EQ(r2.tags, std::vector<std::string>{"latest"});
  EXPECT_EQ(r2.container_concurrency, 2);
  EXPECT_EQ(r2.queue_depth, 5);
  EXPECT_EQ(r2.timeout, std::chrono::milliseconds(1500));
  ASSERT_EQ(r2.endpoints.size(), 2u);
  EXPECT_EQ(r2.endpoints[1], (Endpoint{"10.0.0.2", 83}));
  EXPECT_TRUE(s.has(Component::kExplainer));
  EXPECT_FALSE(s.has(Component::kTransformer));
  EXPECT_EQ(s.component(Component::kPredictor)[0].timeout, kDefaultRevisionTimeout);

  auto bad = RouteTableFromJson(
      R"({"services":[{"namespace":"a","name":"b","predictor":[{"revision":"r","percent":"x"}]}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("services[0].predictor[0].percent: expected an integer"),
            std::string::npos)
      << bad.status().message();
  bad = RouteTableFromJson(R"({"services":[{"namespace":"a","name":"b","predictor":[
      {"revision":"r","percent":100,"endpoints":["nohost"]}]}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("services[0].predictor[0].endpoints[0]"), std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(RouteTableFromJson("{").ok());
  EXPECT_NE(RouteTableFromJson(R"({"services":[{"nme":"x"}]})")
                .status()
                .message()
                .find("services[0].nme: unknown field"),
            std::string::npos);
}

class RouteIndexTest : public ::testing::Test {
 protected:
  RouteIndexTest() {
    auto iris = Service("default", "iris");
    iris.component(Component::kTransformer) = {Rev("iris-transformer-00001", 100)};
    iris.component(Component::kExplainer) = {Rev("iris-explainer-00001", 100)};
    iris.component(Component::kTransformer) = {Rev("t1", 80, "prev"), Rev("t2", 20, "latest")};
    table_.services.push_back(iris);
    table_.services.push_back(Service("team-a", "adder"));
    index_.emplace(table_, "example.com");
  }

  // "service/component/" + tag + target for a successful resolution, or the error.
  std::string Route(std::string_view host, std::string_view target) {
    auto r = index_->Resolve(host, target);
    if (!r.ok()) return "error: " + r.status().message();
    const auto& svc = table_.services[r->route->service];
    auto c = RouteIndex::SelectComponent(svc, *r->route, r->target);
    if (!c.ok()) return "error: " + c.status().message();
    return svc.name + "/" + std::string(ComponentName(*c)) + "/" + r->route->tag +
           std::string(r->target);
  }

  RouteTable table_;
  std::optional<RouteIndex> index_;
};

TEST_F(RouteIndexTest, HostFormsReachTheEntryComponent) {
  EXPECT_EQ(Route("iris.default.example.com", "/v1/models/iris:predict"),
            "iris/transformer//v1/models/iris:predict");
  EXPECT_EQ(Route("iris.default.example.com:8080", "/v2/models/iris/infer"),
            "iris/transformer//v2/models/iris/infer");
  EXPECT_EQ(Route("IRIS.Default.Example.COM", "/"), "iris/transformer//");
  EXPECT_EQ(Route("iris.default", "/x"), "iris/transformer//x");
  EXPECT_EQ(Route("iris.default.svc.cluster.local", "/x"), "iris/transformer//x");
  EXPECT_EQ(Route("adder.team-a.example.com", "/v2/models/adder/infer"),
            "adder/predictor//v2/models/adder/infer");
}

TEST_F(RouteIndexTest, ComponentHostsGoDirectlyToThatComponent) {
  EXPECT_EQ(Route("iris-predictor.default.example.com", "/v1/models/iris:predict"),
            "iris/predictor//v1/models/iris:predict");
  EXPECT_EQ(Route("iris-explainer.default", "/v1/models/iris:predict"),
            "iris/explainer//v1/models/iris:predict");
  // adder has no transformer: the host is unknown.
  EXPECT_EQ(Route("adder-transformer.team-a.example.com", "/").rfind("error: no Inference", 0), 0u);
}

TEST_F(RouteIndexTest, ExplainPathsGoToTheExplainerOnlyWhenThereIsOne) {
  EXPECT_EQ(Route("iris.default.example.com", "/v1/models/iris:explain"),
            "iris/explainer//v1/models/iris:explain");
  EXPECT_EQ(Route("iris.default.example.com", "/v1/models/iris:explain?x=1"),
            "iris/explainer//v1/models/iris:explain?x=1");
  // No explainer: the entry component gets it (its model server answers 501), as in KServe.
  EXPECT_EQ(Route("adder.team-a.example.com", "/v1/models/adder:explain"),
            "adder/predictor//v1/models/adder:explain");
  EXPECT_TRUE(IsExplainPath("/v1/models/my_model-2:explain"));
  EXPECT_FALSE(IsExplainPath("/v1/models/a/b:explain"));
  EXPECT_FALSE(IsExplainPath("/v1/models/:explain"));
  EXPECT_FALSE(IsExplainPath("/v2/models/iris:explain"));
  EXPECT_FALSE(IsExplainPath("/v1/models/iris:explainx"));
}

TEST_F(RouteIndexTest, PathFormStripsThePrefixAndKeepsTheQuery) {
  EXPECT_EQ(Route("localhost:8080", "/serving/team-a/adder/v2/models/adder/infer?a=b"),
            "adder/predictor//v2/models/adder/infer?a=b");
  EXPECT_EQ(Route("", "/serving/default/iris-predictor/v2/health/ready"),
            "iris/predictor//v2/health/ready");
  EXPECT_EQ(Route("", "/serving/default/iris"), "iris/transformer//");
  EXPECT_EQ(Route("", "/serving/default/iris?q=1"), "iris/transformer//?q=1");
  EXPECT_EQ(Route("", "/serving/default/nope/v2"),
            "error: no InferenceService 'nope' in namespace 'default' (path "
            "'/serving/default/nope/v2')");
  EXPECT_EQ(Route("", "/serving/default").rfind("error: path '/serving/default': expected", 0), 0u);
}

TEST_F(RouteIndexTest, TagHostsSelectTheTaggedRevision) {
  EXPECT_EQ(Route("latest-iris.default.example.com", "/x"), "iris/transformer/latest/x");
  EXPECT_EQ(Route("prev-iris.default", "/x"), "iris/transformer/prev/x");
  // adder does not enable tag routing.
  EXPECT_NE(Route("latest-adder.team-a.example.com", "/x")
                .find("error: no InferenceService for "
                      "host 'latest-adder.team-a."
                      "example.com'"),
            std::string::npos);
}

TEST_F(RouteIndexTest, UnknownHostNamesTheHostAndTheExpectedForms) {
  EXPECT_EQ(Route("other.default.example.com", "/"),
            "error: no InferenceService for host 'other.default.example.com': expected "
            "{name}.{namespace}.example.com or the path /serving/{namespace}/{name}/...");
}

TEST(ProxyHeadersTest, RemovesHopByHopHeadersAndAddsForwardingOnes) {
  http::Message m{boost::beast::http::verb::post, "/serving/default/iris/v2/models/iris/infer", 11};
  m.set("Host", "localhost:8080");
  m.set("Connection", "keep-alive, X-Secret-Hop");
  m.set("X-Secret-Hop", "1");
  m.set("Keep-Alive", "timeout=5");
  m.set("TE", "trailers");
  m.set("Upgrade", "h2c");
  m.set("Proxy-Authorization", "Basic abc");
  m.set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  m.set("Authorization", "Bearer token");
  m.body() = "{}";
  auto id = std::string(PrepareUpstreamRequest(m, "/v2/models/iris/infer"));
  EXPECT_EQ(m.target(), "/v2/models/iris/infer");
  for (const char* h :
       {"Connection", "X-Secret-Hop", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization"}) {
    EXPECT_EQ(m.find(h), m.end()) << h;
  }
  EXPECT_EQ(m["traceparent"], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  EXPECT_EQ(m["Authorization"], "Bearer token");
  EXPECT_EQ(m["X-Forwarded-Host"], "localhost:8080");
  EXPECT_EQ(m["Host"], "localhost:8080");
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(m["x-request-id"], id);

  // An existing request id is kept.
  http::Message m2{boost::beast::http::verb::get, "/", 11};
  m2.set("X-Request-Id", "abc-123");
  EXPECT_EQ(PrepareUpstreamRequest(m2, "/"), "abc-123");
  http::Message m3{boost::beast::http::verb::get, "/", 11};
  EXPECT_NE(PrepareUpstreamRequest(m3, "/"), id);  // ids differ per request

  http::ResponseMessage res{boost::beast::http::status::ok, 11};
  res.set("Content-Type", "application/json");
  res.set("Connection", "close");
  res.set("Transfer-Encoding", "chunked");
  res.set("X-Model", "iris");
  res.body() = "{\"a\":1}";
  res.prepare_payload();
  http::Response out;
  CopyUpstreamResponse(res, &out);
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.body, "{\"a\":1}");
  std::vector<std::string> names;
  for (auto& [k, v] : out.headers) names.push_back(k);
  EXPECT_EQ(names, (std::vector<std::string>{"Content-Type", "X-Model"}));
}

}  // namespace
}  // namespace quiver::gateway
