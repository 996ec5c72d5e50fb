// Node evaluation without a network: a fake StepCaller answers each URL, and the clock and the
// Splitter's random value are injected.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "graph/graph_engine.h"
#include "graph/header_propagation.h"
#include "graph/payload_mapping.h"
#include "spec/resource.h"

namespace quiver::graph {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

spec::InferenceGraph LoadGraph(std::string_view nodes_yaml, std::string_view extra_spec = "") {
  std::string text = "apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceGraph\n"
                     "metadata: {name: g}\nspec:\n" +
                     std::string(extra_spec) + "  nodes:\n" + std::string(nodes_yaml);
  auto manifests = spec::ParseManifests(text, "graph.yaml");
  EXPECT_TRUE(manifests.ok()) << manifests.status().ToString();
  Json doc = (*manifests)[0].doc;
  Status valid = spec::DefaultAndValidate(doc);
  EXPECT_TRUE(valid.ok()) << valid.ToString();
  auto graph = spec::InferenceGraphFromJson(doc);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  return *graph;
}

// Answers by URL: a fixed reply, or one computed from the request. With `defer`, calls wait
// in `pending` until the test completes them (to see what runs in parallel).
class FakeCaller : public StepCaller {
 public:
  using Responder = std::function<StepReply(const StepRequest&)>;

  void On(const std::string& url, int status, std::string body) {
    routes_[url] = [status, body](const StepRequest&) {
      return StepReply{.status = Status::Ok(), .http_status = status, .body = body,
                       .content_type = "application/json"};
    };
  }
  void On(const std::string& url, Responder r) { routes_[url] = std::move(r); }

  void Call(StepRequest request, std::function<void(StepReply)> done) override {
    calls.push_back(request);
    auto it = routes_.find(request.url);
    StepReply reply = it == routes_.end()
                          ? StepReply{.status = Unavailable("connection refused")}
                          : it->second(request);
    if (defer) {
      pending.push_back([reply, done] { done(reply); });
    } else {
      done(std::move(reply));
    }
  }

  std::vector<StepRequest> calls;
  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const auto& c : calls) out.push_back(c.url);
    return out;
  }
  bool defer = false;
  std::deque<std::function<void()>> pending;

 private:
  std::map<std::string, Responder> routes_;
};

struct Harness {
  explicit Harness(const spec::InferenceGraph& graph, EngineOptions options = {}) {
    if (!options.clock) options.clock = [this] { return now; };
    if (!options.random) options.random = [this] { return random; };
    auto compiled = GraphEngine::Compile(graph, std::move(options));
    EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
    engine = *compiled;
  }

  // Runs the graph; the result is there when every call completed.
  void Start(std::string body, Headers headers = {}) {
    result.reset();
    engine->Run(std::move(body), std::make_shared<const Headers>(std::move(headers)), caller,
                [this](GraphResult r) {
                  EXPECT_FALSE(result.has_value()) << "done called twice";
                  result = std::move(r);
                });
  }
  GraphResult Run(std::string body, Headers headers = {}) {
    Start(std::move(body), std::move(headers));
    EXPECT_TRUE(result.has_value()) << "the graph did not answer";
    return result.value_or(GraphResult{});
  }

  Clock::time_point now{};
  double random = 0.5;
  FakeCaller caller;
  std::shared_ptr<const GraphEngine> engine;
  std::optional<GraphResult> result;
};

Json J(const std::string& text) { return Json::parse(text); }

std::string Cause(const GraphResult& r) {
  Json body = J(r.body);
  EXPECT_EQ(body["error"], "Failed to process request") << r.body;
  return body.value("cause", "");
}

constexpr const char* kA = "http://a.test/v1/models/a:predict";
constexpr const char* kB = "http://b.test/v1/models/b:predict";
constexpr const char* kC = "http://c.test/v1/models/c:predict";

// docs/samples/graph: a sequence of two, the second on the original request.
TEST(Sequence, StepsRunInOrderOnTheRequestOrThePreviousResponse) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
      - {serviceUrl: "http://b.test/v1/models/b:predict", data: $request}
      - {serviceUrl: "http://c.test/v1/models/c:predict", data: $response}
)Y"));
  h.caller.On(kA, 200, R"({"predictions":[1]})");
  h.caller.On(kB, 200, R"({"predictions":[2]})");
  h.caller.On(kC, 201, R"({"predictions":[3]})");
  GraphResult r = h.Run(R"({"instances":[[1,2]]})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, R"({"predictions":[3]})");
  ASSERT_THAT(h.caller.urls(), ElementsAre(kA, kB, kC));
  EXPECT_EQ(h.caller.calls[0].body, R"({"instances":[[1,2]]})");
  EXPECT_EQ(h.caller.calls[1].body, R"({"instances":[[1,2]]})");
  EXPECT_EQ(h.caller.calls[2].body, R"({"predictions":[2]})");
}

TEST(Sequence, MapPredictionsToInstancesRewritesTheStepsRequest) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
      - {serviceUrl: "http://b.test/v1/models/b:predict", data: $response,
         mapPredictionsToInstances: true}
)Y"));
  h.caller.On(kA, 200, R"({"predictions":[0,2],"model":"a"})");
  h.caller.On(kB, 200, R"({"predictions":["setosa"]})");
  EXPECT_EQ(h.Run(R"({"instances":[[1]]})").body, R"({"predictions":["setosa"]})");
  EXPECT_EQ(h.caller.calls[1].body, R"({"instances":[0,2],"model":"a"})");
}

TEST(Sequence, UnmatchedConditionStopsWithThePreviousResponseAnd200) {
  auto graph = LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
      - serviceUrl: "http://b.test/v1/models/b:predict"
        data: $response
        condition: 'predictions.#(label=="dog")'
)Y");
  Harness cat(graph);
  cat.caller.On(kA, 200, R"({"predictions":[{"label":"cat"}]})");
  cat.caller.On(kB, 200, R"({"breed":"beagle"})");
  GraphResult r = cat.Run("{}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"predictions":[{"label":"cat"}]})");
  EXPECT_THAT(cat.caller.urls(), ElementsAre(kA));

  Harness dog(graph);
  dog.caller.On(kA, 200, R"({"predictions":[{"label":"dog"}]})");
  dog.caller.On(kB, 200, R"({"breed":"beagle"})");
  EXPECT_EQ(dog.Run("{}").body, R"({"breed":"beagle"})");
  EXPECT_THAT(dog.caller.urls(), ElementsAre(kA, kB));
}

TEST(Sequence, ConditionOnANonJsonResponseIsA500) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
      - {serviceUrl: "http://b.test/v1/models/b:predict", condition: predictions}
)Y"));
  h.caller.On(kA, 200, "plain text");
  GraphResult r = h.Run("{}");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(Cause(r), HasSubstr("not JSON"));
}

TEST(Sequence, HardFailureStopsWithThatStepsStatusAndBody) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict", dependency: Hard}
      - {serviceUrl: "http://b.test/v1/models/b:predict"}
)Y"));
  h.caller.On(kA, 503, R"({"error":"model a is not ready"})");
  h.caller.On(kB, 200, R"({"predictions":[2]})");
  GraphResult r = h.Run("{}");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, R"({"error":"model a is not ready"})");
  EXPECT_THAT(h.caller.urls(), ElementsAre(kA));
}

TEST(Sequence, SoftFailureFlowsOnToTheNextStep) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
      - {serviceUrl: "http://b.test/v1/models/b:predict", data: $response}
)Y"));
  h.caller.On(kA, 500, R"({"error":"boom"})");
  h.caller.On(kB, 200, R"({"predictions":[2]})");
  GraphResult r = h.Run("{}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(h.caller.calls[1].body, R"({"error":"boom"})");
  // The last step's failure is the answer when it is Soft too.
  Harness last(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
)Y"));
  last.caller.On(kA, 422, R"({"error":"bad"})");
  EXPECT_EQ(last.Run("{}").status, 422);
}

TEST(Sequence, AServiceThatCannotBeCalledFailsTheGraphWithKServesErrorBody) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {name: first, serviceUrl: "http://dead.test:9/v1/models/a:predict"}
      - {serviceUrl: "http://b.test/v1/models/b:predict"}
)Y"));
  GraphResult r = h.Run("{}");
  EXPECT_EQ(r.status, 500);
  std::string cause = Cause(r);
  EXPECT_THAT(cause, HasSubstr("step \"first\" (spec.nodes.root.steps[0])"));
  EXPECT_THAT(cause, HasSubstr("http://dead.test:9/v1/models/a:predict"));
  EXPECT_THAT(cause, HasSubstr("connection refused"));
  EXPECT_EQ(h.caller.calls.size(), 1u);
}

// docs/samples/graph/switch.yaml
TEST(Switch, FirstMatchingConditionOnTheRequestWins) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Switch
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict", condition: "instances.#(intval<11)"}
      - {serviceUrl: "http://b.test/v1/models/b:predict", condition: "instances.#(intval>10)"}
      - {serviceUrl: "http://c.test/v1/models/c:predict", condition: "instances.#(intval>0)"}
)Y"));
  h.caller.On(kA, 200, R"({"from":"a"})");
  h.caller.On(kB, 200, R"({"from":"b"})");
  h.caller.On(kC, 200, R"({"from":"c"})");
  EXPECT_EQ(h.Run(R"({"instances":[{"intval":12}]})").body, R"({"from":"b"})");
  EXPECT_EQ(h.Run(R"({"instances":[{"intval":3}]})").body, R"({"from":"a"})");
  EXPECT_EQ(h.caller.calls[1].body, R"({"instances":[{"intval":3}]})");
}

TEST(Switch, NoMatchIs404WithKServesBody) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Switch
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict", condition: "instances.#(intval>10)"}
)Y"));
  GraphResult r = h.Run(R"({"instances":[{"intval":1}]})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(J(r.body), J(R"({"error":"Failed to process request",
                              "cause":"None of the routes matched with the switch condition"})"));
  EXPECT_TRUE(h.caller.calls.empty());
  GraphResult not_json = h.Run("instances=1");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_THAT(Cause(not_json), HasSubstr("not JSON"));
}

// docs/samples/graph/ensemble.yaml
TEST(Ensemble, AllStepsRunInParallelAndTheAnswerMapsNamesToResponses) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Ensemble
      steps:
      - {name: sklearn-iris, serviceUrl: "http://a.test/v1/models/a:predict"}
      - {serviceUrl: "http://b.test/v1/models/b:predict"}
)Y"));
  h.caller.On(kA, 200, R"({"predictions":[1]})");
  h.caller.On(kB, 500, R"({"error":"soft failure"})");
  h.caller.defer = true;
  h.Start(R"({"instances":[[1]]})");
  // Both calls are out before either answered.
  ASSERT_EQ(h.caller.calls.size(), 2u);
  EXPECT_EQ(h.caller.calls[1].body, R"({"instances":[[1]]})");
  EXPECT_FALSE(h.result.has_value());
  h.caller.pending[1]();
  EXPECT_FALSE(h.result.has_value());
  h.caller.pending[0]();
  ASSERT_TRUE(h.result.has_value());
  EXPECT_EQ(h.result->status, 200);
  EXPECT_EQ(J(h.result->body), J(R"({"sklearn-iris":{"predictions":[1]},
                                     "1":{"error":"soft failure"}})"));
}

TEST(Ensemble, AFailedHardStepsStatusAndBodyWinWithoutWaitingForTheRest) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Ensemble
      steps:
      - {name: a, serviceUrl: "http://a.test/v1/models/a:predict", dependency: Hard}
      - {name: b, serviceUrl: "http://b.test/v1/models/b:predict"}
)Y"));
  h.caller.On(kA, 400, R"({"error":"bad input for a"})");
  h.caller.On(kB, 200, R"({"predictions":[2]})");
  h.caller.defer = true;
  h.Start("{}");
  h.caller.pending[0]();
  ASSERT_TRUE(h.result.has_value());
  EXPECT_EQ(h.result->status, 400);
  EXPECT_EQ(J(h.result->body), J(R"({"error":"bad input for a"})"));
  h.caller.pending[1]();  // late answers are ignored
}

TEST(Ensemble, AResponseThatIsNotAJsonObjectIsA500) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Ensemble
      steps:
      - {name: a, serviceUrl: "http://a.test/v1/models/a:predict"}
)Y"));
  h.caller.On(kA, 200, "[1,2]");
  GraphResult r = h.Run("{}");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(Cause(r), HasSubstr("not a JSON object"));
}

// docs/samples/graph/splitter.yaml
TEST(Splitter, TheInjectedRandomValuePicksByCumulativeWeight) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Splitter
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict", weight: 20}
      - {serviceUrl: "http://b.test/v1/models/b:predict", weight: 80}
)Y"));
  h.caller.On(kA, 200, R"({"from":"a"})");
  h.caller.On(kB, 200, R"({"from":"b"})");
  h.random = 0.0;
  EXPECT_EQ(h.Run("{}").body, R"({"from":"a"})");
  h.random = 0.1999;
  EXPECT_EQ(h.Run("{}").body, R"({"from":"a"})");
  h.random = 0.2;
  EXPECT_EQ(h.Run("{}").body, R"({"from":"b"})");
  h.random = 0.9999;
  EXPECT_EQ(h.Run("{}").body, R"({"from":"b"})");
  EXPECT_EQ(h.caller.calls[0].body, "{}");
}

TEST(Splitter, PickWeightedBoundaries) {
  EXPECT_EQ(PickWeighted({20, 80}, 0.0), 0u);
  EXPECT_EQ(PickWeighted({20, 80}, 0.19), 0u);
  EXPECT_EQ(PickWeighted({20, 80}, 0.20), 1u);
  EXPECT_EQ(PickWeighted({0, 100}, 0.0), 1u);  // a zero weight is never picked
  EXPECT_EQ(PickWeighted({50, 0, 50}, 0.5), 2u);
  EXPECT_EQ(PickWeighted({100}, 0.999999), 0u);
  EXPECT_EQ(PickWeighted({30, 70}, 1.0), 1u);  // out of range is clamped, never "no step"
}

TEST(Nesting, NodesNestToAnyDepth) {
  // root: Sequence(a, node ens); ens: Ensemble(node pick, c); pick: Switch(b if x, a if y).
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
      - {nodeName: ens, data: $response}
    ens:
      routerType: Ensemble
      steps:
      - {name: picked, nodeName: pick}
      - {name: c, serviceUrl: "http://c.test/v1/models/c:predict"}
    pick:
      routerType: Switch
      steps:
      - {serviceUrl: "http://b.test/v1/models/b:predict", condition: "predictions.#(==1)"}
      - {serviceUrl: "http://a.test/v1/models/a:predict", condition: "predictions"}
)Y"));
  h.caller.On(kA, 200, R"({"predictions":[1]})");
  h.caller.On(kB, 200, R"({"from":"b"})");
  h.caller.On(kC, 200, R"({"from":"c"})");
  GraphResult r = h.Run("{}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(J(r.body), J(R"({"picked":{"from":"b"},"c":{"from":"c"}})"));
  EXPECT_THAT(h.caller.urls(), ElementsAre(kA, kB, kC));
  EXPECT_EQ(h.caller.calls[2].body, R"({"predictions":[1]})");
}

TEST(Nesting, AHardFailureInsideANestedNodeReachesTheClient) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {nodeName: inner, dependency: Hard}
      - {serviceUrl: "http://c.test/v1/models/c:predict"}
    inner:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict", dependency: Hard}
)Y"));
  h.caller.On(kA, 507, R"({"error":"full"})");
  GraphResult r = h.Run("{}");
  EXPECT_EQ(r.status, 507);
  EXPECT_EQ(r.body, R"({"error":"full"})");
  EXPECT_THAT(h.caller.urls(), ElementsAre(kA));
}

constexpr const char* kV2A = "http://a.test/v2/models/a/infer";
constexpr const char* kV2B = "http://b.test/v2/models/b/infer";

TEST(V2Chaining, OutputsBecomeTheNextStepsInputsByName) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v2/models/a/infer"}
      - {serviceUrl: "http://b.test/v2/models/b/infer", data: $response, mapOutputsToInputs: true}
)Y"));
  h.caller.On(kV2A, 200, R"({"model_name":"a","id":"r1","outputs":[
      {"name":"scores","datatype":"FP32","shape":[1,2],"data":[0.5,1.5],
       "parameters":{"binary_data_size":8,"unit":"cm"}}]})");
  h.caller.On(kV2B, 200, R"({"model_name":"b","outputs":[]})");
  GraphResult r = h.Run(R"({"inputs":[]})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(J(h.caller.calls[1].body), J(R"({"id":"r1","inputs":[
      {"name":"scores","datatype":"FP32","shape":[1,2],"parameters":{"unit":"cm"},
       "data":[0.5,1.5]}]})"));
}

TEST(V2Chaining, AMappingRenamesAndSelectsOutputs) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v2/models/a/infer"}
      - serviceUrl: "http://b.test/v2/models/b/infer"
        data: $response
        mapOutputsToInputs: {sum: INPUT0}
)Y"));
  h.caller.On(kV2A, 200, R"({"outputs":[
      {"name":"diff","datatype":"INT32","shape":[1],"data":[0]},
      {"name":"sum","datatype":"INT32","shape":[1],"data":[4]}]})");
  h.caller.On(kV2B, 200, R"({"outputs":[]})");
  EXPECT_EQ(h.Run("{}").status, 200);
  EXPECT_EQ(J(h.caller.calls[1].body),
            J(R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1],"data":[4]}]})"));
}

TEST(V2Chaining, AMissingOutputFailsTheGraphNamingWhatThereIs) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v2/models/a/infer"}
      - serviceUrl: "http://b.test/v2/models/b/infer"
        data: $response
        mapOutputsToInputs: {probabilities: x}
)Y"));
  h.caller.On(kV2A, 200, R"({"outputs":[{"name":"label","datatype":"INT64","shape":[1],
                                         "data":[2]}]})");
  GraphResult r = h.Run("{}");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(Cause(r), HasSubstr("no output \"probabilities\" (it has: label)"));
  EXPECT_EQ(h.caller.calls.size(), 1u);
}

TEST(PayloadMapping, NonJsonAndNonV2BodiesAreReported) {
  EXPECT_EQ(MapPredictionsToInstances("not json"), "not json");
  EXPECT_EQ(MapPredictionsToInstances(R"({"x":1})"), R"({"x":1})");
  EXPECT_THAT(MapOutputsToInputs("{}", {}).status().message(), HasSubstr("\"outputs\""));
  EXPECT_THAT(MapOutputsToInputs(R"({"outputs":[{"name":"o","datatype":"FP32","shape":[1],
                                    "parameters":{"binary_data_size":4}}]})",
                                 {})
                  .status()
                  .message(),
              HasSubstr("binary-extension"));
}

TEST(Timeouts, EachCallGetsTheSmallerOfTheStepAndRemainingGraphTime) {
  EngineOptions options;
  options.step_timeout = std::chrono::milliseconds(500);
  options.graph_timeout = std::chrono::milliseconds(1000);
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
      - {serviceUrl: "http://b.test/v1/models/b:predict"}
      - {serviceUrl: "http://c.test/v1/models/c:predict"}
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
)Y"),
            options);
  // Each call takes 450 ms of the fake clock.
  auto slow = [&h](const StepRequest&) {
    h.now += std::chrono::milliseconds(450);
    return StepReply{.status = Status::Ok(), .http_status = 200, .body = "{}"};
  };
  h.caller.On(kA, slow);
  h.caller.On(kB, slow);
  h.caller.On(kC, slow);
  GraphResult r = h.Run("{}");
  ASSERT_EQ(h.caller.calls.size(), 3u);  // the fourth found no time left
  EXPECT_EQ(h.caller.calls[0].timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(h.caller.calls[1].timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(h.caller.calls[2].timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(r.status, 504);
  EXPECT_THAT(Cause(r), HasSubstr("timeout of 1000 ms"));
}

TEST(Timeouts, AStepTimeoutIsKServes500AndTheGraphTimeoutA504) {
  EngineOptions options;
  options.step_timeout = std::chrono::milliseconds(100);
  options.graph_timeout = std::chrono::milliseconds(1000);
  auto graph = LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
)Y");
  Harness step(graph, options);
  step.caller.On(kA, [](const StepRequest&) {
    return StepReply{.status = DeadlineExceeded("request timed out")};
  });
  GraphResult r = step.Run("{}");
  EXPECT_EQ(r.status, 500);
  EXPECT_THAT(Cause(r), HasSubstr("timed out"));

  options.step_timeout.reset();
  Harness whole(graph, options);
  whole.caller.On(kA, [&whole](const StepRequest&) {
    whole.now += std::chrono::milliseconds(1000);
    return StepReply{.status = DeadlineExceeded("request timed out")};
  });
  EXPECT_EQ(whole.Run("{}").status, 504);
}

TEST(ServiceName, ResolvedPerCallAndResolverErrorsKeepTheirStatus) {
  EngineOptions options;
  options.resolve_service = [](const std::string& name) -> StatusOr<std::string> {
    if (name == "sklearn-iris") return std::string(kA);
    return NotFound("InferenceService \"" + name + "\" not found in namespace default");
  };
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceName: sklearn-iris}
      - {serviceName: missing}
)Y"),
            options);
  h.caller.On(kA, 200, R"({"predictions":[1]})");
  GraphResult r = h.Run("{}");
  EXPECT_THAT(h.caller.urls(), ElementsAre(kA));
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(Cause(r), HasSubstr("InferenceService \"missing\" not found"));
}

TEST(Headers, PropagatedHeadersReachEveryStep) {
  Harness h(LoadGraph(R"Y(
    root:
      routerType: Ensemble
      steps:
      - {serviceUrl: "http://a.test/v1/models/a:predict"}
      - {serviceUrl: "http://b.test/v1/models/b:predict"}
)Y"));
  h.caller.On(kA, 200, "{}");
  h.caller.On(kB, 200, "{}");
  h.Run("{}", {{"Authorization", "Bearer t"}});
  for (const auto& call : h.caller.calls) {
    ASSERT_TRUE(call.headers);
    EXPECT_THAT(*call.headers, ElementsAre(std::pair<std::string, std::string>(
                                   "Authorization", "Bearer t")));
  }
}

TEST(HeaderPropagation, PatternsMatchCanonicalNamesAsKServeDoes) {
  auto p = HeaderPropagation::Create({"Test-Header-*", "Auth*", ".*Trace-Id.*"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  http::Message m{boost::beast::http::verb::post, "/", 11};
  m.set("authorization", "Bearer token");
  m.set("test-header-1", "one");
  m.set("x-b3-trace-id", "67890");
  m.set("x-request-id", "12345");
  m.set("host", "graph.default.example.com");
  m.set("content-length", "2");
  Headers selected = p->Select(m);
  EXPECT_THAT(selected, ElementsAre(std::pair<std::string, std::string>("Authorization",
                                                                        "Bearer token"),
                                    std::pair<std::string, std::string>("Test-Header-1", "one"),
                                    std::pair<std::string, std::string>("X-B3-Trace-Id",
                                                                        "67890")));
  auto everything = HeaderPropagation::Create({".*"});
  ASSERT_TRUE(everything.ok());
  for (const auto& [name, value] : everything->Select(m)) {
    EXPECT_NE(name, "Host");
    EXPECT_NE(name, "Content-Length");
  }
  EXPECT_EQ(CanonicalHeaderName("x-b3-TRACE-id"), "X-B3-Trace-Id");
  auto bad = HeaderPropagation::Create({"Test-Header-[0-9", "Auth*"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("\"Test-Header-[0-9\""));
}

TEST(Compile, ProblemsNameTheField) {
  auto compile = [](std::string_view nodes) {
    auto compiled = GraphEngine::Compile(LoadGraph(nodes), EngineOptions{});
    EXPECT_FALSE(compiled.ok());
    return compiled.ok() ? std::string() : compiled.status().message();
  };
  EXPECT_THAT(compile(R"Y(
    root:
      routerType: Switch
      steps:
      - {serviceUrl: "http://a.test/", condition: 'instances.#(x=="1"'}
)Y"),
              HasSubstr("spec.nodes.root.steps[0].condition: position 18: unterminated query"));
  EXPECT_THAT(compile(R"Y(
    root:
      routerType: Switch
      steps:
      - {serviceUrl: "http://a.test/"}
)Y"),
              HasSubstr("spec.nodes.root.steps[0].condition: required on a Switch's steps"));
  EXPECT_THAT(compile(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "http://a.test/", condition: predictions}
)Y"),
              HasSubstr("first step of a Sequence cannot have a condition"));
  EXPECT_THAT(compile(R"Y(
    root:
      routerType: Sequence
      steps:
      - {serviceUrl: "https://a.test/v1/models/a:predict"}
)Y"),
              HasSubstr("spec.nodes.root.steps[0].serviceUrl: step URL "
                        "\"https://a.test/v1/models/a:predict\": https is not supported"));
}

}  // namespace
}  // namespace quiver::graph
