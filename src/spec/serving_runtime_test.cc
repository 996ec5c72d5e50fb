#include "spec/serving_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quiver::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ServingRuntime Runtime(std::string name, std::vector<SupportedModelFormat> formats,
                       std::vector<Protocol> protocols = {Protocol::kV1, Protocol::kV2},
                       bool cluster = false) {
  ServingRuntime runtime;
  runtime.metadata.name = std::move(name);
  runtime.cluster_scoped = cluster;
  runtime.supported_model_formats = std::move(formats);
  runtime.protocol_versions = std::move(protocols);
  runtime.containers.push_back(ContainerSpec{.name = "kserve-container", .command = {"serve"}});
  return runtime;
}

SupportedModelFormat Format(std::string name, bool auto_select = true,
                            std::optional<int> priority = std::nullopt,
                            std::optional<std::string> version = std::nullopt) {
  return SupportedModelFormat{std::move(name), std::move(version), auto_select, priority};
}

ComponentSpec Predictor(std::string format, Protocol protocol = Protocol::kV1,
                        std::string runtime = "") {
  ComponentSpec predictor;
  predictor.model_format.name = std::move(format);
  predictor.protocol_version = protocol;
  predictor.runtime = std::move(runtime);
  return predictor;
}

std::string Selected(const StatusOr<const ServingRuntime*>& result) {
  return result.ok() ? (*result)->metadata.name : "error: " + result.status().message();
}

// KServe's config/runtimes/kserve-sklearnserver.yaml, as shipped.
constexpr std::string_view kSklearnServer = R"(
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata:
  name: kserve-sklearnserver
spec:
  annotations:
    prometheus.kserve.io/port: '8080'
    prometheus.kserve.io/path: "/metrics"
  supportedModelFormats:
    - name: sklearn
      version: "1"
      autoSelect: true
      priority: 1
  protocolVersions:
    - v1
    - v2
  containers:
    - name: kserve-container
      image: kserve-sklearnserver:replace
      args:
        - --model_name={{.Name}}
        - --model_dir=/mnt/models
        - --http_port=8080
      securityContext: {runAsNonRoot: true}
      resources:
        requests: {cpu: "1", memory: 2Gi}
        limits: {cpu: "1", memory: 2Gi}
  nodeSelector: {}
)";

TEST(ServingRuntimeView, ReadsKServeSample) {
  Json doc = (*ParseManifests(kSklearnServer, "rt.yaml"))[0].doc;
  ASSERT_TRUE(DefaultAndValidate(doc).ok());
  StatusOr<ServingRuntime> runtime = ServingRuntimeFromJson(doc);
  ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
  EXPECT_TRUE(runtime->cluster_scoped);
  ASSERT_EQ(runtime->supported_model_formats.size(), 1u);
  EXPECT_EQ(runtime->supported_model_formats[0].version, "1");
  EXPECT_TRUE(runtime->supported_model_formats[0].auto_select);
  EXPECT_EQ(runtime->supported_model_formats[0].priority, 1);
  EXPECT_THAT(runtime->protocol_versions, ElementsAre(Protocol::kV1, Protocol::kV2));
  EXPECT_EQ(runtime->annotations.at("prometheus.kserve.io/port"), "8080");
  EXPECT_THAT(runtime->containers[0].args,
              ElementsAre("--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"));
  EXPECT_EQ(runtime->containers[0].resources.limits.at("memory"), "2Gi");
}

TEST(ServingRuntimeView, ValidationErrors) {
  auto error = [](std::string spec) {
    Json doc =
        (*ParseManifests("apiVersion: serving.kserve.io/v1alpha1\nkind: ServingRuntime\n"
                         "metadata: {name: rt}\nspec:\n" +
                             spec,
                         "rt.yaml"))[0]
            .doc;
    Status status = DefaultAndValidate(doc);
    EXPECT_FALSE(status.ok()) << spec;
    return status.message();
  };
  EXPECT_THAT(error("  supportedModelFormats: [{name: sklearn}]\n"),
              HasSubstr("spec.containers: required"));
  EXPECT_THAT(error("  supportedModelFormats: [{name: sklearn, priority: 0}]\n"
                    "  containers: [{command: [x]}]\n"),
              HasSubstr("spec.supportedModelFormats[0].priority: must be >= 1, got 0"));
  EXPECT_THAT(error("  supportedModelFormats: [{name: sklearn, priority: 1, version: \"1\"},"
                    " {name: sklearn, priority: 2, version: \"2\"}]\n"
                    "  containers: [{command: [x]}]\n"),
              HasSubstr("spec.supportedModelFormats[1].priority: differs from "
                        "spec.supportedModelFormats[0].priority for the same format sklearn"));
  EXPECT_THAT(error("  protocolVersions: [v1, v9]\n  containers: [{command: [x]}]\n"),
              HasSubstr("spec.protocolVersions[1]: must be one of v1|v2|grpc-v1|grpc-v2, got "
                        "\"v9\""));
  EXPECT_THAT(error("  autoselect: true\n  containers: [{command: [x]}]\n"),
              HasSubstr("spec.autoselect: unknown field"));
  EXPECT_THAT(error("  disabled: \"yes\"\n  containers: [{command: [x]}]\n"),
              HasSubstr("spec.disabled: must be true or false, got string \"yes\""));
}

TEST(BuiltinRuntimes, CoverQuiverFormats) {
  const std::vector<ServingRuntime>& builtins = BuiltinRuntimes();
  ASSERT_EQ(builtins.size(), 5u);
  ASSERT_EQ(BuiltinRuntimeDocs().size(), 5u);
  for (std::string format : {"sklearn", "xgboost", "pytorch", "onnx", "custom"}) {
    for (Protocol protocol : {Protocol::kV1, Protocol::kV2, Protocol::kGrpcV2}) {
      EXPECT_EQ(Selected(SelectRuntime(Predictor(format, protocol), {}, builtins)),
                "quiver-" + format);
    }
  }
  const ServingRuntime& xgb = *SelectRuntime(Predictor("xgboost"), {}, builtins).value();
  EXPECT_TRUE(xgb.cluster_scoped);
  EXPECT_THAT(xgb.containers[0].command, ElementsAre("quiver", "serve"));
  EXPECT_EQ(xgb.annotations.at("prometheus.kserve.io/path"), "/metrics");
  EXPECT_THAT(Selected(SelectRuntime(Predictor("xgboost", Protocol::kGrpcV1), {}, builtins)),
              HasSubstr("no runtime supports model format xgboost with protocol grpc-v1"));
}

TEST(SelectRuntime, PriorityAndStableTies) {
  std::vector<ServingRuntime> cluster = {
      Runtime("low", {Format("sklearn", true, 1)}, {}, true),
      Runtime("high", {Format("sklearn", true, 5)}, {}, true),
      Runtime("also-high", {Format("sklearn", true, 5)}, {}, true),
      Runtime("unset", {Format("sklearn")}, {}, true),
  };
  EXPECT_EQ(Selected(SelectRuntime(Predictor("sklearn"), {}, cluster)), "high");
  EXPECT_EQ(Selected(SelectRuntime(Predictor("SKLearn"), {}, cluster)), "high");
}

TEST(SelectRuntime, NamespaceBeforeCluster) {
  std::vector<ServingRuntime> ns = {Runtime("mine", {Format("sklearn", true, 1)})};
  std::vector<ServingRuntime> cluster = {
      Runtime("theirs", {Format("sklearn", true, 10)}, {}, true)};
  EXPECT_EQ(Selected(SelectRuntime(Predictor("sklearn"), ns, cluster)), "mine");
}

TEST(SelectRuntime, SkipsDisabledMultiModelAutoSelectOffAndProtocolMismatch) {
  ServingRuntime disabled = Runtime("disabled", {Format("sklearn", true, 9)});
  disabled.disabled = true;
  ServingRuntime multi = Runtime("multi", {Format("sklearn", true, 8)});
  multi.multi_model = true;
  std::vector<ServingRuntime> ns = {
      disabled, multi, Runtime("manual", {Format("sklearn", false, 7)}),
      Runtime("grpc-only", {Format("sklearn", true, 6)}, {Protocol::kGrpcV2}),
      Runtime("v2", {Format("sklearn", true, 1)}, {Protocol::kV2})};
  EXPECT_EQ(Selected(SelectRuntime(Predictor("sklearn", Protocol::kV2), ns, {})), "v2");
  EXPECT_THAT(Selected(SelectRuntime(Predictor("sklearn", Protocol::kV1), ns, {})),
              HasSubstr("no runtime supports model format sklearn with protocol v1"));
  EXPECT_EQ(SelectRuntime(Predictor("sklearn", Protocol::kV1), ns, {}).status().code(),
            StatusCode::kNotFound);
  // An empty protocolVersions list supports every protocol.
  std::vector<ServingRuntime> any = {Runtime("any", {Format("sklearn")}, {})};
  EXPECT_EQ(Selected(SelectRuntime(Predictor("sklearn", Protocol::kGrpcV1), any, {})), "any");
}

TEST(SelectRuntime, VersionsMatchWhenBothGiven) {
  std::vector<ServingRuntime> ns = {Runtime("v1-runtime", {Format("sklearn", true, 2, "1")}),
                                    Runtime("v2-runtime", {Format("sklearn", true, 1, "2")})};
  ComponentSpec predictor = Predictor("sklearn");
  predictor.model_format.version = "2";
  EXPECT_EQ(Selected(SelectRuntime(predictor, ns, {})), "v2-runtime");
  predictor.model_format.version = "3";
  EXPECT_THAT(Selected(SelectRuntime(predictor, ns, {})),
              HasSubstr("model format sklearn version 3"));
  predictor.model_format.version.reset();
  EXPECT_EQ(Selected(SelectRuntime(predictor, ns, {})), "v1-runtime");
}

TEST(SelectRuntime, CustomContainersHaveNoRuntime) {
  ComponentSpec custom;
  custom.kind = ComponentSpec::Kind::kContainers;
  StatusOr<const ServingRuntime*> result = SelectRuntime(custom, {}, BuiltinRuntimes());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("only predictor.model selects"));
}

TEST(SelectRuntime, ExplicitRuntime) {
  ServingRuntime manual = Runtime("manual", {Format("sklearn", false)});
  ServingRuntime shadow_ns = Runtime("shared", {Format("xgboost", false)});
  ServingRuntime shadow_cluster = Runtime("shared", {Format("sklearn", true)}, {}, true);
  ServingRuntime off = Runtime("off", {Format("sklearn")});
  off.disabled = true;
  std::vector<ServingRuntime> ns = {manual, shadow_ns, off};
  std::vector<ServingRuntime> cluster = {shadow_cluster};
  // autoSelect is not needed when the runtime is named.
  EXPECT_EQ(Selected(SelectRuntime(Predictor("sklearn", Protocol::kV1, "manual"), ns, cluster)),
            "manual");
  // The namespace runtime wins over the cluster one of the same name, even when it does not fit.
  EXPECT_THAT(Selected(SelectRuntime(Predictor("sklearn", Protocol::kV1, "shared"), ns, cluster)),
              HasSubstr("ServingRuntime \"shared\" does not support model format sklearn"));
  EXPECT_THAT(Selected(SelectRuntime(Predictor("sklearn", Protocol::kGrpcV2, "manual"), ns, {})),
              HasSubstr("does not support protocol grpc-v2 (it supports v1, v2)"));
  EXPECT_THAT(Selected(SelectRuntime(Predictor("sklearn", Protocol::kV1, "off"), ns, {})),
              HasSubstr("ServingRuntime \"off\" is disabled"));
  StatusOr<const ServingRuntime*> missing =
      SelectRuntime(Predictor("sklearn", Protocol::kV1, "nope"), ns, cluster);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("named \"nope\""));
}

TEST(LocalCommand, SubstitutesTemplatesModelDirAndPorts) {
  ContainerSpec runtime_container = BuiltinRuntimes()[0].containers[0];
  ComponentSpec predictor = Predictor("sklearn");
  predictor.args = {"--workers=2"};
  predictor.env = {{"OMP_NUM_THREADS", "1"}};
  ContainerSpec merged = MergeContainers(runtime_container, predictor);
  LocalCommandOptions options;
  options.name = "iris";
  options.model_dir = "/var/lib/quiver/models/abc";
  options.http_port = 41001;
  options.grpc_port = 41002;
  StatusOr<LocalCommand> command = BuildLocalCommand(merged, options);
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  EXPECT_THAT(command->argv, ElementsAre("quiver", "serve", "--model_name=iris",
                                         "--model_dir=/var/lib/quiver/models/abc",
                                         "--http_port=41001", "--grpc_port=41002", "--workers=2"));
  EXPECT_THAT(command->env, ElementsAre(EnvVar{"OMP_NUM_THREADS", "1"}, EnvVar{"PORT", "41001"}));
}

TEST(LocalCommand, HandlesSeparateFlagValuesLabelsAndPaths) {
  ContainerSpec container;
  container.name = "custom";
  container.command = {"python", "-m", "server"};
  container.args = {"--http-port",
                    "8080",
                    "--grpc-port",
                    "8081",
                    "--model",
                    "/mnt/models/model.joblib",
                    "--other=/mnt/models-old",
                    "--ns={{ .Namespace }}",
                    "--team={{.Labels.team}}",
                    "--tier={{index .Annotations \"example.com/tier\"}}"};
  container.env = {{"MODEL_DIR", "/mnt/models"}, {"PORT", "1"}};
  LocalCommandOptions options;
  options.name = "iris";
  options.namespace_name = "prod";
  options.labels = {{"team", "ml"}};
  options.annotations = {{"example.com/tier", "gold"}};
  options.model_dir = "/data/iris";
  options.http_port = 9000;  // gRPC left alone: no grpc_port given
  StatusOr<LocalCommand> command = BuildLocalCommand(container, options);
  ASSERT_TRUE(command.ok()) << command.status().ToString();
  EXPECT_THAT(command->argv,
              ElementsAre("python", "-m", "server", "--http-port", "9000", "--grpc-port", "8081",
                          "--model", "/data/iris/model.joblib", "--other=/mnt/models-old",
                          "--ns=prod", "--team=ml", "--tier=gold"));
  EXPECT_THAT(command->env, ElementsAre(EnvVar{"MODEL_DIR", "/data/iris"}, EnvVar{"PORT", "9000"}));

  container.args = {"--x={{.Spec.Foo}}"};
  EXPECT_THAT(BuildLocalCommand(container, options).status().message(),
              HasSubstr("unsupported template {{.Spec.Foo}}"));
  ContainerSpec image_only{.name = "c", .image = "kserve/sklearnserver"};
  EXPECT_THAT(BuildLocalCommand(image_only, options).status().message(),
              HasSubstr("container \"c\" has no command or args"));
}

TEST(MergeContainers, FollowsKServe) {
  ContainerSpec runtime{.name = "kserve-container",
                        .command = {"serve"},
                        .args = {"--a"},
                        .env = {{"A", "1"}, {"B", "2"}}};
  runtime.resources.limits = {{"cpu", "1"}, {"memory", "2Gi"}};
  ComponentSpec component;
  component.args = {"--b"};
  component.env = {{"B", "3"}, {"C", "4"}};
  component.resources.limits = {{"memory", "4Gi"}};
  ContainerSpec merged = MergeContainers(runtime, component);
  EXPECT_THAT(merged.command, ElementsAre("serve"));
  EXPECT_THAT(merged.args, ElementsAre("--a", "--b"));
  EXPECT_THAT(merged.env, ElementsAre(EnvVar{"A", "1"}, EnvVar{"B", "3"}, EnvVar{"C", "4"}));
  EXPECT_EQ(merged.resources.limits.at("cpu"), "1");
  EXPECT_EQ(merged.resources.limits.at("memory"), "4Gi");
  component.command = {"other"};
  EXPECT_THAT(MergeContainers(runtime, component).command, ElementsAre("other"));
}

}  // namespace
}  // namespace quiver::spec
