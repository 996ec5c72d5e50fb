#include "spec/inference_graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "spec/trained_model.h"

namespace quiver::spec {
namespace {

using ::testing::HasSubstr;

Json Load(std::string_view text) {
  StatusOr<std::vector<Manifest>> manifests = ParseManifests(text, "graph.yaml");
  EXPECT_TRUE(manifests.ok()) << manifests.status().ToString();
  return manifests.ok() && !manifests->empty() ? (*manifests)[0].doc : Json();
}

std::string Graph(std::string_view nodes) {
  return std::string(R"(
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: model-chainer}
spec:
  nodes:
)") + std::string(nodes);
}

std::string Invalid(std::string_view text) {
  Json doc = Load(text);
  Status status = DefaultAndValidate(doc);
  EXPECT_FALSE(status.ok()) << text;
  return status.message();
}

// docs/samples/graph/sequence.yaml
TEST(InferenceGraphSamples, Sequence) {
  Json doc = Load(R"(
apiVersion: "serving.kserve.io/v1alpha1"
kind: "InferenceGraph"
metadata:
  name: "model-chainer"
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
      - serviceName: sklearn-iris
        name: sklearn-iris
      - serviceName: xgboost-iris
        name: xgboost-iris
        data: $request
        dependency: Hard
)");
  ASSERT_TRUE(DefaultAndValidate(doc).ok());
  StatusOr<InferenceGraph> graph = InferenceGraphFromJson(doc);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->metadata.namespace_name, "default");
  const InferenceRouter& root = graph->nodes.at("root");
  EXPECT_EQ(root.router_type, RouterType::kSequence);
  ASSERT_EQ(root.steps.size(), 2u);
  EXPECT_EQ(root.steps[0].service_name, "sklearn-iris");
  EXPECT_EQ(root.steps[0].data, "$request");
  EXPECT_EQ(root.steps[0].dependency, StepDependency::kSoft);
  EXPECT_EQ(root.steps[1].dependency, StepDependency::kHard);
  EXPECT_EQ(graph->router_timeouts.server_read, 60);
  EXPECT_EQ(graph->router_timeouts.server_idle, 180);
}

// docs/samples/graph/splitter.yaml, plus a nested node and a switch with serviceUrl.
TEST(InferenceGraphSamples, SplitterSwitchAndNodes) {
  Json doc = Load(Graph(R"yaml(
    root:
      routerType: Splitter
      steps:
      - serviceName: sklearn-iris
        weight: 20
      - nodeName: chooser
        weight: 80
    chooser:
      routerType: Switch
      steps:
      - serviceUrl: http://single-1.default.svc.cluster.local/v1/models/single-1:predict
        condition: "instances.#(intval>10)"
      - serviceName: single-2
        condition: "instances.#(intval<11)"
  routerTimeouts: {serverRead: 10}
  timeout: 30
)yaml"));
  ASSERT_TRUE(DefaultAndValidate(doc).ok());
  InferenceGraph graph = *InferenceGraphFromJson(doc);
  EXPECT_EQ(graph.nodes.at("root").router_type, RouterType::kSplitter);
  EXPECT_EQ(graph.nodes.at("root").steps[1].weight, 80);
  EXPECT_EQ(graph.nodes.at("root").steps[1].node_name, "chooser");
  EXPECT_EQ(graph.nodes.at("chooser").router_type, RouterType::kSwitch);
  EXPECT_EQ(graph.nodes.at("chooser").steps[0].condition, "instances.#(intval>10)");
  EXPECT_EQ(graph.router_timeouts.server_read, 10);
  EXPECT_EQ(graph.timeout_seconds, 30);
}

TEST(InferenceGraphValidation, Errors) {
  EXPECT_THAT(Invalid(Graph("    main: {routerType: Sequence, steps: [{serviceName: a}]}\n")),
              HasSubstr("spec.nodes.root: required: the graph's entry node must be named root"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{name: x}]}\n")),
              HasSubstr("spec.nodes.root.steps[0]: exactly one of serviceName, serviceUrl, "
                        "nodeName is required, got none"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{serviceName: a, "
                            "serviceUrl: \"http://b\"}]}\n")),
              HasSubstr("got serviceName and serviceUrl"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Splitter, steps: [{serviceName: a, weight: "
                            "30}, {serviceName: b, weight: 60}]}\n")),
              HasSubstr("spec.nodes.root.steps: the weights of a Splitter's steps must sum to "
                        "100, got 90"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Splitter, steps: [{serviceName: a, weight: "
                            "100}, {serviceName: b}]}\n")),
              HasSubstr("spec.nodes.root.steps[1].weight: required on a Splitter's steps"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{serviceName: a, weight: "
                            "100}]}\n")),
              HasSubstr("only a Splitter's steps take a weight"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{nodeName: missing}]}\n")),
              HasSubstr("spec.nodes.root.steps[0].nodeName: no node named \"missing\""));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{nodeName: a}]}\n"
                            "    a: {routerType: Sequence, steps: [{nodeName: b}]}\n"
                            "    b: {routerType: Ensemble, steps: [{nodeName: a}]}\n")),
              HasSubstr("spec.nodes: nodeName references form a cycle: a -> b -> a"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Parallel, steps: [{serviceName: a}]}\n")),
              HasSubstr("spec.nodes.root.routerType: must be one of "
                        "Sequence|Switch|Ensemble|Splitter, got \"Parallel\""));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: []}\n")),
              HasSubstr("spec.nodes.root.steps: required: at least one step"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{serviceName: a, "
                            "dependency: Strong, data: $body}]}\n")),
              HasSubstr("spec.nodes.root.steps[0].dependency: must be one of Soft|Hard"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{serviceName: a, "
                            "data: $body}]}\n")),
              HasSubstr("spec.nodes.root.steps[0].data: must be one of $request|$response"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, stepz: []}\n")),
              HasSubstr("spec.nodes.root.stepz: unknown field"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{serviceUrl: "
                            "\"ftp://x\"}]}\n")),
              HasSubstr("spec.nodes.root.steps[0].serviceUrl: must be an http:// or https:// URL"));
}

// Quiver's v2 chaining field: true, or a map of output name to input name.
TEST(InferenceGraphValidation, MapOutputsToInputs) {
  Json doc = Load(Graph("    root:\n      routerType: Sequence\n      steps:\n"
                        "      - {serviceName: a}\n"
                        "      - {serviceName: b, data: $response, mapOutputsToInputs: true}\n"
                        "      - {serviceName: c, data: $response,\n"
                        "         mapOutputsToInputs: {OUTPUT0: INPUT0, OUTPUT1: INPUT1}}\n"));
  ASSERT_TRUE(DefaultAndValidate(doc).ok());
  StatusOr<InferenceGraph> graph = InferenceGraphFromJson(doc);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const auto& steps = graph->nodes.at("root").steps;
  EXPECT_FALSE(steps[0].map_outputs_to_inputs);
  EXPECT_TRUE(steps[1].map_outputs_to_inputs);
  EXPECT_TRUE(steps[1].output_to_input.empty());
  EXPECT_TRUE(steps[2].map_outputs_to_inputs);
  EXPECT_EQ(steps[2].output_to_input,
            (std::map<std::string, std::string>{{"OUTPUT0", "INPUT0"}, {"OUTPUT1", "INPUT1"}}));

  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{serviceName: a, "
                            "mapOutputsToInputs: yes-please}]}\n")),
              HasSubstr("spec.nodes.root.steps[0].mapOutputsToInputs: must be true, false or a "
                        "non-empty map"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{serviceName: a, "
                            "mapOutputsToInputs: {OUTPUT0: 3}}]}\n")),
              HasSubstr("spec.nodes.root.steps[0].mapOutputsToInputs.OUTPUT0: must be the name"));
  EXPECT_THAT(Invalid(Graph("    root: {routerType: Sequence, steps: [{serviceName: a, "
                            "mapOutputsToInputs: true, mapPredictionsToInstances: true}]}\n")),
              HasSubstr("cannot be combined with mapPredictionsToInstances"));
}

// docs/samples/multimodelserving/sklearn/trainedmodels.yaml
TEST(TrainedModelSamples, ParsesAndValidates) {
  Json doc = Load(R"(
apiVersion: "serving.kserve.io/v1alpha1"
kind: "TrainedModel"
metadata:
  name: "model1-sklearn"
spec:
  inferenceService: "sklearn-iris-example"
  model:
    storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"
    framework: "sklearn"
    memory: "256Mi"
)");
  ASSERT_TRUE(DefaultAndValidate(doc).ok());
  StatusOr<TrainedModel> model = TrainedModelFromJson(doc);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->inference_service, "sklearn-iris-example");
  EXPECT_EQ(model->framework, "sklearn");
  EXPECT_EQ(model->memory, "256Mi");
  EXPECT_EQ(model->memory_bytes, 256 * 1024 * 1024);

  std::string header =
      "apiVersion: serving.kserve.io/v1alpha1\nkind: TrainedModel\nmetadata: {name: m}\nspec:\n";
  EXPECT_THAT(Invalid(header + "  model: {storageUri: /m, framework: sklearn, memory: 1Gi}\n"),
              HasSubstr("spec.inferenceService: required"));
  EXPECT_THAT(Invalid(header + "  inferenceService: iris\n  model: {storageUri: /m, framework: "
                               "sklearn}\n"),
              HasSubstr("spec.model.memory: required"));
  EXPECT_THAT(Invalid(header + "  inferenceService: iris\n  model: {storageUri: /m, framework: "
                               "sklearn, memory: lots}\n"),
              HasSubstr("spec.model.memory: \"lots\" is not a quantity"));
  EXPECT_THAT(Invalid(header + "  inferenceService: iris\n  model: {storageUri: \"oci://x\", "
                               "framework: sklearn, memory: 1Gi}\n"),
              HasSubstr("spec.model.storageUri: unsupported scheme \"oci://\""));
  EXPECT_THAT(Invalid(header + "  inferenceService: iris\n  model: {framework: sklearn, "
                               "memory: 1Gi, size: 3}\n"),
              HasSubstr("spec.model.size: unknown field"));
}

}  // namespace
}  // namespace quiver::spec
