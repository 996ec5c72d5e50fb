// Quiver's own ClusterServingRuntimes, one per format family, so that an InferenceService with
// `modelFormat: {name: xgboost}` finds a runtime with no set-up, as KServe's shipped runtimes do.
// The args follow KServe's convention; `quiver serve` accepts the underscore flag spellings.
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "spec/serving_runtime.h"
#include "spec/validators.h"

namespace quiver::spec {
namespace {

constexpr std::string_view kBuiltinRuntimesYaml = R"(# Quiver's built-in ClusterServingRuntimes.
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata:
  name: quiver-sklearn
  labels:
    app.kubernetes.io/managed-by: quiver
spec:
  annotations:
    prometheus.kserve.io/port: "8080"
    prometheus.kserve.io/path: /metrics
  supportedModelFormats:
    - name: sklearn
      autoSelect: true
      priority: 1
  protocolVersions: [v1, v2, grpc-v2]
  containers:
    - name: kserve-container
      image: quiver
      command: [quiver, serve]
      args:
        - --model_name={{.Name}}
        - --model_dir=/mnt/models
        - --http_port=8080
        - --grpc_port=8081
---
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata:
  name: quiver-xgboost
  labels:
    app.kubernetes.io/managed-by: quiver
spec:
  annotations:
    prometheus.kserve.io/port: "8080"
    prometheus.kserve.io/path: /metrics
  supportedModelFormats:
    - name: xgboost
      autoSelect: true
      priority: 1
  protocolVersions: [v1, v2, grpc-v2]
  containers:
    - name: kserve-container
      image: quiver
      command: [quiver, serve]
      args:
        - --model_name={{.Name}}
        - --model_dir=/mnt/models
        - --http_port=8080
        - --grpc_port=8081
---
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata:
  name: quiver-pytorch
  labels:
    app.kubernetes.io/managed-by: quiver
spec:
  annotations:
    prometheus.kserve.io/port: "8080"
    prometheus.kserve.io/path: /metrics
  supportedModelFormats:
    - name: pytorch
      autoSelect: true
      priority: 1
  protocolVersions: [v1, v2, grpc-v2]
  containers:
    - name: kserve-container
      image: quiver
      command: [quiver, serve]
      args:
        - --model_name={{.Name}}
        - --model_dir=/mnt/models
        - --http_port=8080
        - --grpc_port=8081
---
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata:
  name: quiver-onnx
  labels:
    app.kubernetes.io/managed-by: quiver
spec:
  annotations:
    prometheus.kserve.io/port: "8080"
    prometheus.kserve.io/path: /metrics
  supportedModelFormats:
    - name: onnx
      autoSelect: true
      priority: 1
  protocolVersions: [v1, v2, grpc-v2]
  containers:
    - name: kserve-container
      image: quiver
      command: [quiver, serve]
      args:
        - --model_name={{.Name}}
        - --model_dir=/mnt/models
        - --http_port=8080
        - --grpc_port=8081
---
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata:
  name: quiver-custom
  labels:
    app.kubernetes.io/managed-by: quiver
spec:
  annotations:
    prometheus.kserve.io/port: "8080"
    prometheus.kserve.io/path: /metrics
  supportedModelFormats:
    - name: custom
      autoSelect: true
      priority: 1
  protocolVersions: [v1, v2, grpc-v2]
  containers:
    - name: kserve-container
      image: quiver
      command: [quiver, serve]
      args:
        - --model_name={{.Name}}
        - --model_dir=/mnt/models
        - --http_port=8080
        - --grpc_port=8081
)";

struct Builtins {
  std::vector<Json> docs;
  std::vector<ServingRuntime> runtimes;
};

const Builtins& LoadBuiltins() {
  static const Builtins* builtins = [] {
    auto* result = new Builtins;
    StatusOr<std::vector<Manifest>> manifests =
        ParseManifests(kBuiltinRuntimesYaml, "built-in runtimes");
    // The text is compiled in and covered by spec_test; failing here is a build defect.
    if (!manifests.ok()) {
      spdlog::critical("built-in runtimes do not parse: {}", manifests.status().message());
      std::abort();
    }
    for (Manifest& manifest : *manifests) {
      Status status = DefaultAndValidate(manifest.doc);
      StatusOr<ServingRuntime> runtime =
          status.ok() ? ServingRuntimeFromJson(manifest.doc) : StatusOr<ServingRuntime>(status);
      if (!runtime.ok()) {
        spdlog::critical("built-in runtime invalid: {}", runtime.status().message());
        std::abort();
      }
      result->docs.push_back(std::move(manifest.doc));
      result->runtimes.push_back(std::move(*runtime));
    }
    return result;
  }();
  return *builtins;
}

}  // namespace

std::string_view BuiltinRuntimesYaml() { return kBuiltinRuntimesYaml; }

const std::vector<Json>& BuiltinRuntimeDocs() { return LoadBuiltins().docs; }

const std::vector<ServingRuntime>& BuiltinRuntimes() { return LoadBuiltins().runtimes; }

}  // namespace quiver::spec
