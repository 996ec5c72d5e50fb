#include "render/render.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "spec/serving_runtime.h"

namespace quiver::render {
namespace {

constexpr char kImage[] = "registry.example.com/quiver:1.2.3";

RenderOptions Options(std::optional<Mode> mode = Mode::kStandard) {
  RenderOptions options;
  options.image = kImage;
  options.mode = mode;
  return options;
}

StatusOr<std::vector<Json>> Render(const std::string& yaml, const RenderOptions& options) {
  StatusOr<std::vector<spec::Manifest>> manifests = spec::ParseManifests(yaml, "test.yaml");
  if (!manifests.ok()) return manifests.status();
  return RenderManifests(*manifests, options);
}

std::vector<Json> RenderOk(const std::string& yaml, const RenderOptions& options = Options()) {
  StatusOr<std::vector<Json>> objects = Render(yaml, options);
  EXPECT_TRUE(objects.ok()) << objects.status().message();
  return objects.ok() ? *objects : std::vector<Json>{};
}

std::string RenderError(const std::string& yaml, const RenderOptions& options = Options()) {
  StatusOr<std::vector<Json>> objects = Render(yaml, options);
  EXPECT_FALSE(objects.ok());
  return objects.ok() ? "" : objects.status().message();
}

const Json* Find(const std::vector<Json>& objects, const std::string& kind,
                 const std::string& name) {
  for (const Json& o : objects) {
    if (o["kind"] == kind && o["metadata"]["name"] == name) return &o;
  }
  return nullptr;
}

std::vector<std::string> Kinds(const std::vector<Json>& objects) {
  std::vector<std::string> kinds;
  for (const Json& o : objects) kinds.push_back(o["kind"].get<std::string>());
  return kinds;
}

constexpr char kSklearn[] = R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
  namespace: ml
spec:
  predictor:
    model:
      modelFormat: {name: sklearn}
      runtime: kserve-sklearnserver
      storageUri: s3://models/iris
)";

TEST(RenderStandard, SklearnBecomesDeploymentServiceHpaAndRoute) {
  std::vector<Json> objects = RenderOk(kSklearn);
  EXPECT_EQ(Kinds(objects), (std::vector<std::string>{"Deployment", "Service",
                                                      "HorizontalPodAutoscaler", "HTTPRoute"}));
  const Json* deployment = Find(objects, "Deployment", "sklearn-iris-predictor");
  ASSERT_NE(deployment, nullptr);
  EXPECT_EQ((*deployment)["metadata"]["namespace"], "ml");
  const Json& pod = (*deployment)["spec"]["template"]["spec"];
  const Json& init = pod["initContainers"][0];
  EXPECT_EQ(init["image"], kImage);
  EXPECT_EQ(init["command"], Json::array({"quiver", "storage-initializer"}));
  EXPECT_EQ(init["args"], Json::array({"s3://models/iris", "/mnt/models"}));
  const Json& container = pod["containers"][0];
  // The KServe runtime name falls back to Quiver's own runtime for the format.
  EXPECT_EQ(container["image"], kImage);
  EXPECT_EQ(container["args"][0], "--model_name=sklearn-iris");
  EXPECT_EQ(container["readinessProbe"]["httpGet"]["path"], "/v2/health/ready");
  EXPECT_EQ(container["livenessProbe"]["httpGet"]["path"], "/v2/health/live");
  EXPECT_EQ(container["resources"]["requests"]["cpu"], "1");  // KServe's default
  EXPECT_EQ((*deployment)["spec"]["selector"]["matchLabels"]["app"], "isvc.sklearn-iris-predictor");

  const Json* hpa = Find(objects, "HorizontalPodAutoscaler", "sklearn-iris-predictor");
  ASSERT_NE(hpa, nullptr);
  EXPECT_EQ((*hpa)["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80);
  const Json* route = Find(objects, "HTTPRoute", "sklearn-iris");
  ASSERT_NE(route, nullptr);
  EXPECT_EQ((*route)["spec"]["hostnames"][0], "sklearn-iris-ml.example.com");
  EXPECT_EQ((*route)["spec"]["rules"][0]["backendRefs"][0]["name"], "sklearn-iris-predictor");
  for (const Json& o : objects) {
    EXPECT_EQ(o["metadata"]["labels"]["app.kubernetes.io/managed-by"], "quiver") << o["kind"];
    EXPECT_EQ(o["metadata"]["labels"]["serving.kserve.io/inferenceservice"], "sklearn-iris");
  }
}

TEST(RenderStandard, SameInputSameBytes) {
  std::string first = ToYamlStream(RenderOk(kSklearn));
  std::string second = ToYamlStream(RenderOk(kSklearn));
  EXPECT_EQ(first, second);
  EXPECT_NE(first.find("---\n"), std::string::npos);
  EXPECT_EQ(ToJsonList(RenderOk(kSklearn)), ToJsonList(RenderOk(kSklearn)));
  Json list = Json::parse(ToJsonList(RenderOk(kSklearn)));
  EXPECT_EQ(list["kind"], "List");
  EXPECT_EQ(list["items"].size(), 4u);
}

// kubectl reads YAML 1.1, where yes/no/on/off are booleans and 0755 is octal: such strings must
// come out quoted or a label or env value would stop being a string.
TEST(RenderYaml, StringsThatReadAsOtherTypesAreQuoted) {
  std::string yaml = ToYamlStream(RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: q
  labels: {enabled: "yes", build: "0755", window: "1:30"}
spec:
  predictor:
    model:
      modelFormat: {name: sklearn}
      storageUri: "s3://b/m"
      env: [{name: STRICT, value: "on"}, {name: RATIO, value: "0.5"}, {name: MODE, value: fast}]
)"));
  for (const char* quoted :
       {"enabled: \"yes\"", "build: \"0755\"", "window: \"1:30\"", "value: \"on\"",
        "value: \"0.5\"", "port: 8080", "prometheus.io/port: \"8080\""}) {
    EXPECT_NE(yaml.find(quoted), std::string::npos) << quoted;
  }
  EXPECT_NE(yaml.find("value: fast\n"), std::string::npos);
  EXPECT_NE(yaml.find("memory: 2Gi\n"), std::string::npos);
}

TEST(RenderStandard, ResourcesGpuNodeSelectorAndTolerationsPassThrough) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: gpu}
spec:
  predictor:
    nodeSelector: {accelerator: t4}
    tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
    serviceAccountName: models
    model:
      modelFormat: {name: pytorch}
      storageUri: pvc://claim/models/resnet
      resources:
        requests: {cpu: "4"}
        limits: {nvidia.com/gpu: 1}
)");
  const Json& pod = (*Find(objects, "Deployment", "gpu-predictor"))["spec"]["template"]["spec"];
  EXPECT_EQ(pod["nodeSelector"]["accelerator"], "t4");
  EXPECT_EQ(pod["tolerations"][0]["key"], "nvidia.com/gpu");
  EXPECT_EQ(pod["serviceAccountName"], "models");
  const Json& resources = pod["containers"][0]["resources"];
  EXPECT_EQ(resources["requests"]["cpu"], "4");
  EXPECT_EQ(resources["limits"]["nvidia.com/gpu"], "1");
  EXPECT_FALSE(resources["limits"].contains("cpu"));  // a request alone stays without a limit
  EXPECT_EQ(resources["requests"]["memory"], "2Gi");  // memory named nowhere: the default
  // pvc:// is mounted where the model is expected; no download.
  EXPECT_FALSE(pod.contains("initContainers"));
  EXPECT_EQ(pod["volumes"][0]["persistentVolumeClaim"]["claimName"], "claim");
  EXPECT_EQ(pod["containers"][0]["volumeMounts"][0]["subPath"], "models/resnet");
}

TEST(RenderStandard, RequestMetricsScaleWithKedaAndCpuWithHpa) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: rps}
spec:
  predictor:
    minReplicas: 0
    maxReplicas: 6
    scaleMetric: rps
    scaleTarget: 40
    model: {modelFormat: {name: xgboost}, storageUri: "https://example.com/m.tar.gz"}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: cpu}
spec:
  predictor:
    minReplicas: 0
    maxReplicas: 3
    scaleMetric: cpu
    scaleTarget: 60
    model: {modelFormat: {name: xgboost}, storageUri: "https://example.com/m.tar.gz"}
)");
  const Json* keda = Find(objects, "ScaledObject", "rps-predictor");
  ASSERT_NE(keda, nullptr);
  EXPECT_EQ((*keda)["spec"]["minReplicaCount"], 0);
  EXPECT_EQ((*keda)["spec"]["maxReplicaCount"], 6);
  EXPECT_EQ((*keda)["spec"]["triggers"][0]["type"], "prometheus");
  EXPECT_EQ((*keda)["spec"]["triggers"][0]["metadata"]["threshold"], "40");
  EXPECT_EQ(Find(objects, "HorizontalPodAutoscaler", "rps-predictor"), nullptr);
  // The Deployment leaves the count to the autoscaler.
  EXPECT_FALSE((*Find(objects, "Deployment", "rps-predictor"))["spec"].contains("replicas"));

  const Json* hpa = Find(objects, "HorizontalPodAutoscaler", "cpu-predictor");
  ASSERT_NE(hpa, nullptr);
  EXPECT_EQ((*hpa)["spec"]["minReplicas"], 1);  // an HPA cannot go to zero
  EXPECT_EQ((*hpa)["spec"]["maxReplicas"], 3);
  EXPECT_EQ((*hpa)["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 60);
}

TEST(RenderStandard, AutoscalerClassNoneFixesReplicas) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fixed
  annotations: {serving.kserve.io/autoscalerClass: none}
spec:
  predictor:
    minReplicas: 3
    model: {modelFormat: {name: onnx}, storageUri: "s3://b/m"}
)");
  EXPECT_EQ(Kinds(objects), (std::vector<std::string>{"Deployment", "Service", "HTTPRoute"}));
  EXPECT_EQ(objects[0]["spec"]["replicas"], 3);
}

TEST(RenderStandard, CanariesAreWeightedBackends) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec:
  predictor:
    minReplicas: 2
    model: {modelFormat: {name: sklearn}, storageUri: "s3://b/v1"}
  canary:
    - trafficPercent: 20
      predictor:
        name: v2
        model: {modelFormat: {name: sklearn}, storageUri: "s3://b/v2"}
    - trafficPercent: 0
      predictor:
        name: v3
        model: {modelFormat: {name: sklearn}, storageUri: "s3://b/v3"}
)");
  const Json* canary = Find(objects, "Deployment", "iris-predictor-v2");
  ASSERT_NE(canary, nullptr);
  EXPECT_EQ((*canary)["spec"]["replicas"], 1);
  EXPECT_EQ((*canary)["spec"]["template"]["spec"]["initContainers"][0]["args"][0], "s3://b/v2");
  EXPECT_EQ(Find(objects, "HorizontalPodAutoscaler", "iris-predictor-v2"), nullptr);
  const Json& backends = (*Find(objects, "HTTPRoute", "iris"))["spec"]["rules"][0]["backendRefs"];
  ASSERT_EQ(backends.size(), 3u);
  EXPECT_EQ(backends[0]["name"], "iris-predictor");
  EXPECT_EQ(backends[0]["weight"], 80);
  EXPECT_EQ(backends[1]["weight"], 20);
  EXPECT_EQ(backends[2]["name"], "iris-predictor-v3");
  EXPECT_EQ(backends[2]["weight"], 0);  // a dark launch
}

TEST(RenderStandard, TransformerGetsPredictorHostAndTheRoute) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: t, namespace: ns}
spec:
  predictor:
    model: {modelFormat: {name: pytorch}, protocolVersion: v2, storageUri: "s3://b/m"}
  transformer:
    containers:
      - image: example/transformer:1
)");
  const Json& c =
      (*Find(objects, "Deployment", "t-transformer"))["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "example/transformer:1");
  EXPECT_EQ(c["args"], Json::array({"--model_name=t", "--predictor_host=t-predictor.ns",
                                    "--http_port=8080", "--protocol=v2"}));
  const Json& route = *Find(objects, "HTTPRoute", "t");
  EXPECT_EQ(route["spec"]["rules"][0]["backendRefs"][0]["name"], "t-transformer");
}

TEST(RenderStandard, InputRuntimeWinsAndItsTemplatesExpand) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: mine, namespace: default}
spec:
  supportedModelFormats: [{name: sklearn, autoSelect: true, priority: 5}]
  nodeSelector: {pool: cpu}
  containers:
    - name: kserve-container
      image: example/server:2
      args: ["--name={{.Name}}", "--team={{.Labels.team}}", "--ns={{ .Namespace }}"]
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: m, labels: {team: a}}
spec:
  predictor:
    model: {modelFormat: {name: sklearn}, storageUri: "s3://b/m"}
)");
  EXPECT_EQ(objects.size(), 4u);  // the runtime itself is not output
  const Json& pod = (*Find(objects, "Deployment", "m-predictor"))["spec"]["template"]["spec"];
  EXPECT_EQ(pod["containers"][0]["image"], "example/server:2");
  EXPECT_EQ(pod["containers"][0]["args"], Json::array({"--name=m", "--team=a", "--ns=default"}));
  EXPECT_EQ(pod["nodeSelector"]["pool"], "cpu");
  EXPECT_EQ(pod["containers"][0]["readinessProbe"]["tcpSocket"]["port"], 8080);
}

TEST(RenderKnative, ServiceWithAutoscalingAnnotations) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: k}
spec:
  predictor:
    minReplicas: 0
    maxReplicas: 5
    scaleTarget: 10
    scaleMetric: concurrency
    containerConcurrency: 20
    timeout: 30
    model: {modelFormat: {name: sklearn}, storageUri: "s3://b/m"}
)",
                                       Options(Mode::kKnative));
  ASSERT_EQ(objects.size(), 1u);
  const Json& ksvc = objects[0];
  EXPECT_EQ(ksvc["apiVersion"], "serving.knative.dev/v1");
  const Json& annotations = ksvc["spec"]["template"]["metadata"]["annotations"];
  EXPECT_EQ(annotations["autoscaling.knative.dev/min-scale"], "0");
  EXPECT_EQ(annotations["autoscaling.knative.dev/max-scale"], "5");
  EXPECT_EQ(annotations["autoscaling.knative.dev/target"], "10");
  EXPECT_EQ(annotations["autoscaling.knative.dev/metric"], "concurrency");
  EXPECT_EQ(annotations["autoscaling.knative.dev/class"], "kpa.autoscaling.knative.dev");
  const Json& spec = ksvc["spec"]["template"]["spec"];
  EXPECT_EQ(spec["containerConcurrency"], 20);
  EXPECT_EQ(spec["timeoutSeconds"], 30);
  EXPECT_EQ(spec["containers"][0]["ports"].size(), 1u);  // Knative allows one port
  EXPECT_EQ(spec["containers"][0]["readinessProbe"]["httpGet"]["port"], 8080);
  EXPECT_EQ(ksvc["spec"]["traffic"], Json::parse(R"([{"latestRevision":true,"percent":100}])"));
}

TEST(RenderKnative, RevisionNameFollowsTheTemplate) {
  auto revision = [](const std::string& uri) {
    std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: k}
spec:
  predictor:
    model: {modelFormat: {name: sklearn}, storageUri: ")" +
                                             uri + R"("}
)",
                                         Options(Mode::kKnative));
    return objects.at(0)["spec"]["template"]["metadata"]["name"].get<std::string>();
  };
  EXPECT_EQ(revision("s3://b/v1"), revision("s3://b/v1"));
  EXPECT_NE(revision("s3://b/v1"), revision("s3://b/v2"));
  EXPECT_EQ(revision("s3://b/v1").rfind("k-predictor-", 0), 0u);
}

TEST(RenderKnative, CanaryTrafficSplitsLatestAndPrevious) {
  constexpr char kCanary[] = R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: c
  annotations: {serving.kserve.io/enable-tag-routing: "true"}
spec:
  predictor:
    canaryTrafficPercent: 10
    model: {modelFormat: {name: sklearn}, storageUri: "s3://b/v2"}
)";
  RenderOptions options = Options(Mode::kKnative);
  // Without a known previous revision it is the first rollout: all to the latest.
  EXPECT_EQ(RenderOk(kCanary, options)[0]["spec"]["traffic"],
            Json::parse(R"([{"latestRevision":true,"percent":100,"tag":"latest"}])"));
  options.previous_revisions["c-predictor"] = "c-predictor-0000abcd";
  EXPECT_EQ(RenderOk(kCanary, options)[0]["spec"]["traffic"], Json::parse(R"([
    {"latestRevision":true,"percent":10,"tag":"latest"},
    {"revisionName":"c-predictor-0000abcd","latestRevision":false,"percent":90,"tag":"prev"}])"));
}

TEST(RenderMode, AnnotationDecidesWhenNoModeIsGiven) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: a
  annotations: {serving.kserve.io/deploymentMode: Serverless}
spec:
  predictor: {model: {modelFormat: {name: sklearn}, storageUri: "s3://b/m"}}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: b}
spec:
  predictor: {model: {modelFormat: {name: sklearn}, storageUri: "s3://b/m"}}
)",
                                       Options(std::nullopt));
  EXPECT_EQ(objects[0]["apiVersion"], "serving.knative.dev/v1");
  EXPECT_EQ(objects[1]["kind"], "Deployment");
}

TEST(RenderGraph, RouterDeploymentWithResolvedServices) {
  std::vector<Json> objects = RenderOk(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: xgb}
spec:
  predictor: {model: {modelFormat: {name: xgboost}, protocolVersion: v2, storageUri: "s3://b/m"}}
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: chain}
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - {serviceName: xgb}
        - {serviceName: other, data: $response}
)");
  const Json* config = Find(objects, "ConfigMap", "chain-graph");
  ASSERT_NE(config, nullptr);
  Json graph = Json::parse((*config)["data"]["graph.json"].get<std::string>());
  const Json& steps = graph["spec"]["nodes"]["root"]["steps"];
  EXPECT_EQ(steps[0]["serviceUrl"],
            "http://xgb-predictor.default.svc.cluster.local/v2/models/xgb/infer");
  EXPECT_EQ(steps[1]["serviceUrl"],
            "http://other-predictor.default.svc.cluster.local/v1/models/other:predict");
  const Json* deployment = Find(objects, "Deployment", "chain");
  ASSERT_NE(deployment, nullptr);
  const Json& c = (*deployment)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["command"], Json::array({"quiver", "router"}));
  EXPECT_EQ((*deployment)["metadata"]["labels"]["serving.kserve.io/inferencegraph"], "chain");
  EXPECT_NE(Find(objects, "HTTPRoute", "chain"), nullptr);
}

TEST(RenderErrors, NameTheDocumentAndTheField) {
  std::string error = RenderError(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: local}
spec:
  predictor: {model: {modelFormat: {name: sklearn}, storageUri: /home/me/model}}
)");
  EXPECT_NE(error.find("test.yaml, document 1 (InferenceService local)"), std::string::npos)
      << error;
  EXPECT_NE(error.find("spec.predictor.model.storageUri"), std::string::npos) << error;

  error = RenderError("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
  EXPECT_NE(error.find("unknown kind \"ConfigMap\""), std::string::npos) << error;

  error = RenderError(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: c}
spec:
  predictor:
    canaryTrafficPercent: 10
    model: {modelFormat: {name: sklearn}, storageUri: "s3://b/m"}
)");
  EXPECT_NE(error.find("spec.predictor.canaryTrafficPercent"), std::string::npos) << error;

  error = RenderError(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: c}
spec:
  predictor: {model: {modelFormat: {name: sklearn}, storageUri: "s3://b/m"}}
  canary:
    - trafficPercent: 70
      predictor: {name: a, maxReplicas: 3, model: {modelFormat: {name: sklearn}, storageUri: "s3://b/a"}}
    - trafficPercent: 40
      predictor: {name: b, minReplica: 1, model: {modelFormat: {name: sklearn}, storageUri: "s3://b/b"}}
)");
  EXPECT_NE(error.find("spec.canary[0].predictor.maxReplicas: not allowed"), std::string::npos)
      << error;
  EXPECT_NE(error.find("spec.canary[1].predictor.minReplica: unknown field"), std::string::npos)
      << error;
  EXPECT_NE(error.find("add up to 110"), std::string::npos) << error;

  error = RenderError(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: m}
spec:
  predictor: {model: {modelFormat: {name: tensorflow}, storageUri: "s3://b/m"}}
)");
  EXPECT_NE(error.find("spec.predictor.model"), std::string::npos) << error;
  EXPECT_NE(error.find("tensorflow"), std::string::npos) << error;

  error = RenderError(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: m}
spec:
  predictor:
    scaleMetric: memory
    model: {modelFormat: {name: sklearn}, storageUri: "s3://b/m"}
)");
  EXPECT_NE(error.find("spec.predictor.scaleTarget: required with scaleMetric memory"),
            std::string::npos)
      << error;
}

TEST(RenderErrors, EveryBadDocumentIsReported) {
  std::string error = RenderError(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: a}
spec:
  predictor: {model: {modelFormat: {name: sklearn}, storageUri: "file:///m"}}
---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: b}
spec:
  predictor: {minReplicas: -1, model: {modelFormat: {name: sklearn}, storageUri: "s3://b/m"}}
)");
  EXPECT_NE(error.find("document 1 (InferenceService a)"), std::string::npos) << error;
  EXPECT_NE(error.find("document 2 (InferenceService b): spec.predictor.minReplicas"),
            std::string::npos)
      << error;
}

// deploy/kserve holds what a KServe cluster installs; it must run the same container as the
// built-in runtimes of `quiver up`, so a model behaves the same in both places.
TEST(DeployManifests, KServeRuntimesMatchTheBuiltins) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(QUIVER_SOURCE_DIR) / "deploy" / "kserve";
  int checked = 0;
  for (const Json& builtin : spec::BuiltinRuntimeDocs()) {
    std::string name = builtin["metadata"]["name"].get<std::string>();
    std::ifstream in(dir / (name + ".yaml"));
    ASSERT_TRUE(in) << "missing " << (dir / (name + ".yaml"));
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto manifests = spec::ParseManifests(text, name);
    ASSERT_TRUE(manifests.ok()) << manifests.status().message();
    ASSERT_EQ(manifests->size(), 1u);
    Json doc = (*manifests)[0].doc;
    ASSERT_TRUE(spec::DefaultAndValidate(doc).ok()) << name;
    const Json& ours = doc["spec"];
    const Json& theirs = builtin["spec"];
    EXPECT_EQ(doc["kind"], "ClusterServingRuntime");
    EXPECT_EQ(ours["annotations"], theirs["annotations"]) << name;
    EXPECT_EQ(ours["protocolVersions"], theirs["protocolVersions"]) << name;
    for (const char* key : {"name", "image", "command", "args"}) {
      EXPECT_EQ(ours["containers"][0][key], theirs["containers"][0][key]) << name << " " << key;
    }
    ASSERT_EQ(ours["supportedModelFormats"].size(), theirs["supportedModelFormats"].size());
    for (size_t i = 0; i < ours["supportedModelFormats"].size(); ++i) {
      const Json& a = ours["supportedModelFormats"][i];
      const Json& b = theirs["supportedModelFormats"][i];
      EXPECT_EQ(a["name"], b["name"]);
      EXPECT_EQ(a["autoSelect"], true);
      // Above KServe's own runtimes (priorities 1 to 3), so installing them swaps the servers.
      EXPECT_GT(a["priority"].get<int>(), 3) << name;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

}  // namespace
}  // namespace quiver::render
