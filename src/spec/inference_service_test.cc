#include "spec/inference_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quiver::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Json Load(std::string_view text) {
  StatusOr<std::vector<Manifest>> manifests = ParseManifests(text, "isvc.yaml");
  EXPECT_TRUE(manifests.ok()) << manifests.status().ToString();
  if (!manifests.ok() || manifests->empty()) return Json();
  return (*manifests)[0].doc;
}

InferenceService Valid(std::string_view text) {
  Json doc = Load(text);
  Status status = DefaultAndValidate(doc);
  EXPECT_TRUE(status.ok()) << status.ToString();
  StatusOr<InferenceService> isvc = InferenceServiceFromJson(doc);
  EXPECT_TRUE(isvc.ok()) << isvc.status().ToString();
  return isvc.ok() ? *isvc : InferenceService{};
}

// Wraps a predictor body (indented by four spaces) in an InferenceService named "iris".
std::string WithPredictor(std::string_view predictor) {
  return std::string(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec:
  predictor:
)") + std::string(predictor);
}

std::string Invalid(std::string_view text) {
  Json doc = Load(text);
  Status status = DefaultAndValidate(doc);
  EXPECT_FALSE(status.ok()) << text;
  return status.message();
}

// KServe docs: website sklearn.md, the new model spec with protocol v1 by default.
TEST(InferenceServiceSamples, SklearnIrisModelSpec) {
  InferenceService isvc = Valid(R"(
apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "sklearn-iris"
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"
)");
  EXPECT_EQ(isvc.metadata.name, "sklearn-iris");
  EXPECT_EQ(isvc.metadata.namespace_name, "default");
  const ComponentSpec& p = isvc.predictor;
  EXPECT_EQ(p.kind, ComponentSpec::Kind::kModel);
  EXPECT_EQ(p.model_format.name, "sklearn");
  EXPECT_FALSE(p.model_format.version.has_value());
  EXPECT_EQ(p.storage_uri, "gs://kfserving-examples/models/sklearn/1.0/model");
  EXPECT_EQ(p.protocol_version, Protocol::kV1);
  EXPECT_EQ(p.min_replicas, 1);
  EXPECT_FALSE(p.max_replicas.has_value());
  EXPECT_EQ(p.scale_metric, ScaleMetric::kConcurrency);
  EXPECT_FALSE(p.canary_traffic_percent.has_value());
  EXPECT_FALSE(isvc.transformer.has_value());
  EXPECT_EQ(p.fingerprint.size(), 16u);
}

// The legacy framework key form becomes predictor.model in the stored document.
TEST(InferenceServiceSamples, LegacyFrameworkKeyIsNormalised) {
  std::string legacy = WithPredictor(R"(
    sklearn:
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
      resources: {limits: {cpu: 1, memory: 2Gi}}
)");
  Json doc = Load(legacy);
  ASSERT_TRUE(DefaultAndValidate(doc).ok());
  EXPECT_FALSE(doc["spec"]["predictor"].contains("sklearn"));
  EXPECT_EQ(doc["spec"]["predictor"]["model"]["modelFormat"]["name"], "sklearn");
  EXPECT_EQ(doc["spec"]["predictor"]["minReplicas"], 1);
  InferenceService isvc = *InferenceServiceFromJson(doc);
  EXPECT_EQ(isvc.predictor.model_format.name, "sklearn");
  EXPECT_EQ(isvc.predictor.resources.limits.at("cpu"), "1");
  EXPECT_EQ(isvc.predictor.resources.limits.at("memory"), "2Gi");

  // The same service in the model form has the same fingerprint: no new revision.
  InferenceService modern = Valid(WithPredictor(R"(
    model:
      modelFormat: {name: sklearn}
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
      resources: {limits: {cpu: 1, memory: 2Gi}}
)"));
  EXPECT_EQ(modern.predictor.fingerprint, isvc.predictor.fingerprint);
  // And a view built from the undefaulted document agrees too.
  EXPECT_EQ(InferenceServiceFromJson(Load(legacy))->predictor.fingerprint,
            isvc.predictor.fingerprint);
}

// KServe docs: xgboost with the v2 protocol and a named runtime.
TEST(InferenceServiceSamples, XgboostV2) {
  InferenceService isvc = Valid(R"(
apiVersion: "serving.kserve.io/v1beta1"
kind: "InferenceService"
metadata:
  name: "xgboost-v2-iris"
spec:
  predictor:
    model:
      modelFormat:
        name: xgboost
        version: "1"
      protocolVersion: v2
      runtime: kserve-xgbserver
      storageUri: "gs://kfserving-examples/models/xgboost/iris"
      args: ["--nthread=1"]
      env: [{name: OMP_NUM_THREADS, value: "1"}]
)");
  EXPECT_EQ(isvc.predictor.protocol_version, Protocol::kV2);
  EXPECT_EQ(isvc.predictor.runtime, "kserve-xgbserver");
  EXPECT_EQ(isvc.predictor.model_format.version, "1");
  EXPECT_THAT(isvc.predictor.args, ElementsAre("--nthread=1"));
  ASSERT_EQ(isvc.predictor.env.size(), 1u);
  EXPECT_EQ(isvc.predictor.env[0], (EnvVar{"OMP_NUM_THREADS", "1"}));
}

// docs/samples/v1beta1/transformer: a custom transformer in front of a custom predictor.
TEST(InferenceServiceSamples, TransformerAndPredictorContainers) {
  InferenceService isvc = Valid(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: torch-transformer
spec:
  predictor:
    containers:
      - image: kserve/custom-model:v1
        command: [python, -m, model]
        env:
          - {name: STORAGE_URI, value: "s3://bucket/model"}
        ports: [{containerPort: 8080, protocol: TCP}]
  transformer:
    containers:
      - image: kserve/image-transformer:latest
        name: kserve-container
        command: ["python", "-m", "model"]
        args: ["--model_name", "mnist"]
    serviceAccountName: sa
    nodeSelector: {disk: ssd}
)");
  EXPECT_EQ(isvc.predictor.kind, ComponentSpec::Kind::kContainers);
  ASSERT_EQ(isvc.predictor.containers.size(), 1u);
  EXPECT_EQ(isvc.predictor.containers[0].name, "kserve-container");  // defaulted
  EXPECT_EQ(isvc.predictor.containers[0].ports[0].container_port, 8080);
  EXPECT_EQ(isvc.predictor.storage_uri, "s3://bucket/model");
  ASSERT_TRUE(isvc.transformer.has_value());
  EXPECT_EQ(isvc.transformer->kind, ComponentSpec::Kind::kContainers);
  EXPECT_THAT(isvc.transformer->containers[0].command, ElementsAre("python", "-m", "model"));
  EXPECT_THAT(isvc.transformer->containers[0].args, ElementsAre("--model_name", "mnist"));
  EXPECT_NE(isvc.transformer->fingerprint, isvc.predictor.fingerprint);
}

// docs/samples/v1beta1/rollout/canary.yaml: only the traffic split changes, not the revision.
TEST(InferenceServiceSamples, CanaryKeepsFingerprint) {
  InferenceService stable = Valid(WithPredictor(R"(
    model:
      modelFormat: {name: sklearn}
      storageUri: gs://kfserving-examples/models/sklearn/2.0/model
)"));
  InferenceService canary = Valid(WithPredictor(R"(
    canaryTrafficPercent: 10
    model:
      modelFormat: {name: sklearn}
      storageUri: gs://kfserving-examples/models/sklearn/2.0/model
)"));
  EXPECT_EQ(canary.predictor.canary_traffic_percent, 10);
  EXPECT_EQ(canary.predictor.fingerprint, stable.predictor.fingerprint);
  InferenceService new_model = Valid(WithPredictor(R"(
    canaryTrafficPercent: 10
    model:
      storageUri: gs://kfserving-examples/models/sklearn/3.0/model
      modelFormat: {name: sklearn}
)"));
  EXPECT_NE(new_model.predictor.fingerprint, stable.predictor.fingerprint);
  // Key order does not matter, replica bounds do (Knative keeps them on the revision).
  InferenceService reordered = Valid(WithPredictor(R"(
    model:
      storageUri: gs://kfserving-examples/models/sklearn/2.0/model
      modelFormat: {name: sklearn}
)"));
  EXPECT_EQ(reordered.predictor.fingerprint, stable.predictor.fingerprint);
  InferenceService scaled = Valid(WithPredictor(R"(
    minReplicas: 2
    model:
      modelFormat: {name: sklearn}
      storageUri: gs://kfserving-examples/models/sklearn/2.0/model
)"));
  EXPECT_NE(scaled.predictor.fingerprint, stable.predictor.fingerprint);
}

// docs/samples/batcher and docs/samples/logger.
TEST(InferenceServiceSamples, BatcherAndLogger) {
  InferenceService batched = Valid(WithPredictor(R"(
    batcher:
      maxBatchSize: 16
      maxLatency: 300
    pytorch:
      storageUri: gs://kfserving-examples/models/torchserve/image_classifier/v1
)"));
  ASSERT_TRUE(batched.predictor.batcher.has_value());
  EXPECT_EQ(batched.predictor.batcher->max_batch_size, 16);
  EXPECT_EQ(batched.predictor.batcher->max_latency_ms, 300);
  EXPECT_EQ(batched.predictor.model_format.name, "pytorch");

  InferenceService defaults = Valid(WithPredictor(R"(
    batcher: {}
    model: {modelFormat: {name: sklearn}}
)"));
  EXPECT_EQ(defaults.predictor.batcher->max_batch_size, 32);
  EXPECT_EQ(defaults.predictor.batcher->max_latency_ms, 5000);

  Json doc = Load(WithPredictor(R"(
    logger:
      url: http://message-dumper.default/
    sklearn:
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
)"));
  ASSERT_TRUE(DefaultAndValidate(doc).ok());
  EXPECT_EQ(doc["spec"]["predictor"]["logger"]["mode"], "all");
  InferenceService logged = *InferenceServiceFromJson(doc);
  EXPECT_EQ(logged.predictor.logger->url, "http://message-dumper.default/");
  EXPECT_EQ(logged.predictor.logger->mode, LoggerMode::kAll);

  InferenceService requests = Valid(WithPredictor(R"(
    logger: {url: "http://dump:8000", mode: request, metadataHeaders: [x-user]}
    model: {modelFormat: {name: sklearn}}
)"));
  EXPECT_EQ(requests.predictor.logger->mode, LoggerMode::kRequest);
  EXPECT_THAT(requests.predictor.logger->metadata_headers, ElementsAre("x-user"));
}

TEST(InferenceServiceSamples, ExtensionFields) {
  InferenceService isvc = Valid(WithPredictor(R"(
    minReplicas: 0
    maxReplicas: 3
    scaleTarget: 5
    scaleMetric: rps
    containerConcurrency: 4
    timeout: 30
    labels: {team: a}
    annotations: {autoscaling.knative.dev/target: "1"}
    tolerations: [{key: gpu}]
    affinity: {}
    imagePullSecrets: [{name: s}]
    model:
      modelFormat: {name: onnx}
      storageUri: /models/resnet
      readinessProbe: {httpGet: {path: /}}
)"));
  const ComponentSpec& p = isvc.predictor;
  EXPECT_EQ(p.min_replicas, 0);
  EXPECT_EQ(p.max_replicas, 3);
  EXPECT_EQ(p.scale_target, 5);
  EXPECT_EQ(p.scale_metric, ScaleMetric::kRps);
  EXPECT_EQ(p.container_concurrency, 4);
  EXPECT_EQ(p.timeout_seconds, 30);
  EXPECT_EQ(p.labels.at("team"), "a");
  EXPECT_EQ(p.annotations.at("autoscaling.knative.dev/target"), "1");
  EXPECT_EQ(p.storage_uri, "/models/resnet");
  // maxReplicas 0 means no limit, as in KServe.
  InferenceService unbounded = Valid(WithPredictor(R"(
    minReplicas: 2
    maxReplicas: 0
    model: {modelFormat: {name: onnx}}
)"));
  EXPECT_FALSE(unbounded.predictor.max_replicas.has_value());
}

TEST(InferenceServiceValidation, PredictorForms) {
  EXPECT_THAT(Invalid(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec:
  transformer: {containers: [{image: t}]}
)"),
              HasSubstr("spec.predictor: required"));
  EXPECT_THAT(Invalid(WithPredictor("    minReplicas: 1\n")),
              HasSubstr("spec.predictor: exactly one of model, a framework key (sklearn, "
                        "xgboost, pytorch, onnx, tensorflow, triton, huggingface, pmml, "
                        "lightgbm, paddle) or containers is required, got none"));
  EXPECT_THAT(Invalid(WithPredictor(R"(
    model: {modelFormat: {name: sklearn}}
    sklearn: {storageUri: /m}
)")),
              HasSubstr("got model and sklearn"));
  EXPECT_THAT(Invalid(WithPredictor(R"(
    model: {storageUri: /m}
)")),
              HasSubstr("spec.predictor.model.modelFormat: required"));
  EXPECT_THAT(Invalid(WithPredictor(R"(
    model: {modelFormat: {version: "1"}}
)")),
              HasSubstr("spec.predictor.model.modelFormat.name: required"));
  EXPECT_THAT(Invalid(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec:
  predictor: {model: {modelFormat: {name: sklearn}}}
  transformer: {minReplicas: 1}
)"),
              HasSubstr("spec.transformer.containers: required"));
}

TEST(InferenceServiceValidation, NumbersAndEnums) {
  auto error = [](std::string_view fields) {
    return Invalid(
        WithPredictor(std::string(fields) + "    model: {modelFormat: {name: sklearn}}\n"));
  };
  EXPECT_THAT(error("    minReplicas: -1\n"),
              HasSubstr("spec.predictor.minReplicas: must be >= 0, got -1"));
  EXPECT_THAT(error("    minReplicas: \"1\"\n"),
              HasSubstr("spec.predictor.minReplicas: must be an integer, got string \"1\""));
  EXPECT_THAT(error("    maxReplicas: -2\n"),
              HasSubstr("spec.predictor.maxReplicas: must be >= 0, got -2"));
  EXPECT_THAT(error("    minReplicas: 3\n    maxReplicas: 2\n"),
              HasSubstr("spec.predictor.maxReplicas: must be >= minReplicas (3), got 2"));
  EXPECT_THAT(error("    canaryTrafficPercent: -5\n"),
              HasSubstr("spec.predictor.canaryTrafficPercent: must be >= 0, got -5"));
  EXPECT_THAT(error("    canaryTrafficPercent: 150\n"),
              HasSubstr("must be between 0 and 100, got 150"));
  EXPECT_THAT(error("    scaleMetric: latency\n"),
              HasSubstr("spec.predictor.scaleMetric: must be one of cpu|memory|concurrency|rps, "
                        "got \"latency\""));
  EXPECT_THAT(error("    scaleMetric: cpu\n    scaleTarget: 150\n"),
              HasSubstr("spec.predictor.scaleTarget: must be between 1 and 100, got 150"));
  EXPECT_THAT(error("    containerConcurrency: -1\n"),
              HasSubstr("spec.predictor.containerConcurrency: must be >= 0, got -1"));
  EXPECT_THAT(error("    timeout: 0\n"), HasSubstr("spec.predictor.timeout: must be > 0 seconds"));
  EXPECT_THAT(error("    logger: {url: http://x, mode: everything}\n"),
              HasSubstr("spec.predictor.logger.mode: must be one of all|request|response, got "
                        "\"everything\""));
  EXPECT_THAT(error("    logger: {mode: all}\n"), HasSubstr("spec.predictor.logger.url: required"));
  EXPECT_THAT(error("    logger: {url: ftp://x}\n"),
              HasSubstr("spec.predictor.logger.url: must be an http:// or https:// URL"));
  EXPECT_THAT(error("    batcher: {maxBatchSize: 0}\n"),
              HasSubstr("spec.predictor.batcher.maxBatchSize: must be >= 1, got 0"));
  EXPECT_THAT(error("    autoScaling: {metrics: []}\n"),
              HasSubstr("spec.predictor.autoScaling: not supported"));
  EXPECT_THAT(
      Invalid(WithPredictor("    model: {modelFormat: {name: sklearn}, protocolVersion: v3}\n")),
      HasSubstr("spec.predictor.model.protocolVersion: must be one of "
                "v1|v2|grpc-v1|grpc-v2, got \"v3\""));
}

TEST(InferenceServiceValidation, StorageUri) {
  auto uri_error = [](std::string uri) {
    return Invalid(
        WithPredictor("    model: {modelFormat: {name: sklearn}, storageUri: \"" + uri + "\"}\n"));
  };
  for (std::string ok : {"/models/iris", "./iris", "file:///m", "http://h/m.tgz", "https://h/m",
                         "s3://bucket/iris", "gs://bucket/iris", "pvc://claim/iris"}) {
    Json doc = Load(
        WithPredictor("    model: {modelFormat: {name: sklearn}, storageUri: \"" + ok + "\"}\n"));
    EXPECT_TRUE(DefaultAndValidate(doc).ok()) << ok;
  }
  EXPECT_THAT(uri_error("hf://meta/llama"),
              HasSubstr("spec.predictor.model.storageUri: unsupported scheme \"hf://\"; "
                        "expected a local path or a URI with scheme file://, http://, "
                        "https://, s3://, gs:// or pvc://"));
  EXPECT_THAT(uri_error("s3:///path"), HasSubstr("s3:// needs a bucket"));
  EXPECT_THAT(uri_error("pvc://"), HasSubstr("pvc:// needs a claim name"));
  EXPECT_THAT(uri_error(""), HasSubstr("storageUri: must not be empty"));
}

TEST(InferenceServiceValidation, UnknownAndUnsupportedFields) {
  EXPECT_THAT(
      Invalid(WithPredictor("    minReplica: 1\n    model: {modelFormat: {name: sklearn}}\n")),
      HasSubstr("spec.predictor.minReplica: unknown field"));
  EXPECT_THAT(Invalid(WithPredictor("    model: {modelFormat: {name: sklearn, flavour: x}}\n")),
              HasSubstr("spec.predictor.model.modelFormat.flavour: unknown field"));
  EXPECT_THAT(Invalid(WithPredictor("    sklearn: {storageUri: /m, runtime: x}\n")),
              HasSubstr("spec.predictor.sklearn.runtime: unknown field"));
  EXPECT_THAT(Invalid(WithPredictor("    containers: [{image: x, envv: []}]\n")),
              HasSubstr("spec.predictor.containers[0].envv: unknown field"));
  EXPECT_THAT(Invalid(WithPredictor("    containers: [{name: x}]\n")),
              HasSubstr("spec.predictor.containers[0]: needs an image or a command"));
  EXPECT_THAT(
      Invalid(WithPredictor("    containers: [{image: x, env: [{name: A, valueFrom: {}}]}]\n")),
      HasSubstr("spec.predictor.containers[0].env[0].valueFrom: not supported"));
  EXPECT_THAT(Invalid(WithPredictor("    containers: [{image: x, env: [{value: v}]}]\n")),
              HasSubstr("spec.predictor.containers[0].env[0].name: required"));
  EXPECT_THAT(Invalid(WithPredictor("    containers: [{image: x, env: [{name: A, value: 1}]}]\n")),
              HasSubstr("spec.predictor.containers[0].env[0].value: must be a string, got "
                        "integer 1"));
  EXPECT_THAT(Invalid(WithPredictor(
                  "    model: {modelFormat: {name: sklearn}, resources: {limits: {cpu: lots}}}\n")),
              HasSubstr("spec.predictor.model.resources.limits.cpu: \"lots\" is not a quantity"));
  EXPECT_THAT(Invalid(WithPredictor("    workerSpec: {}\n    model: {modelFormat: {name: x}}\n")),
              HasSubstr("spec.predictor.workerSpec: not supported"));
  EXPECT_THAT(Invalid(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris}
spec:
  predictor: {model: {modelFormat: {name: sklearn}}}
  explainer: {art: {type: SquareAttack}}
)"),
              HasSubstr("spec.explainer.art: not supported"));
}

TEST(InferenceServiceDefaults, AreIdempotentAndSurviveYaml) {
  Json doc = Load(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris, annotations: {serving.kserve.io/enable-tag-routing: "true"}}
spec:
  predictor:
    canaryTrafficPercent: 10
    logger: {url: "http://dump"}
    sklearn: {storageUri: gs://b/m, args: ["--x=1"], resources: {requests: {cpu: 0.5}}}
  transformer:
    containers: [{image: t, env: [{name: PORT_HINT, value: "8080"}]}]
)");
  ASSERT_TRUE(DefaultAndValidate(doc).ok());
  Json again = doc;
  ASSERT_TRUE(DefaultAndValidate(again).ok());
  EXPECT_EQ(again, doc);
  StatusOr<std::vector<Manifest>> back = ParseManifests(ToYaml(doc), "roundtrip");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)[0].doc, doc) << ToYaml(doc);
  EXPECT_EQ(InferenceServiceFromJson((*back)[0].doc)->predictor.fingerprint,
            InferenceServiceFromJson(doc)->predictor.fingerprint);
}

TEST(ComponentFingerprint, IsCanonical) {
  Json a = Json::parse(R"({"b": 1, "a": {"y": 2, "x": 1}})", nullptr, true, false);
  Json b = Json::parse(R"({"a": {"x": 1, "y": 2}, "b": 1})", nullptr, true, false);
  Json c = Json::parse(R"({"a": {"x": 1, "y": 3}, "b": 1})", nullptr, true, false);
  EXPECT_EQ(ComponentFingerprint(a), ComponentFingerprint(b));
  EXPECT_NE(ComponentFingerprint(a), ComponentFingerprint(c));
  // Stable across builds and runs: the reconciler stores it.
  EXPECT_EQ(ComponentFingerprint(Json::object()), "08f44b07b5901a25");
}

}  // namespace
}  // namespace quiver::spec
