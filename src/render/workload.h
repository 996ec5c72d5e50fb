// Private to src/render: the pieces a rendered component is made of. Pod templates (container,
// storage initializer, probes, pass-through pod fields) and autoscaling objects, built from a
// validated component and its selected runtime. Pure functions; thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "render/render.h"
#include "spec/inference_service.h"
#include "spec/serving_runtime.h"

namespace quiver::render {

inline constexpr std::string_view kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr std::string_view kIsvcLabel = "serving.kserve.io/inferenceservice";
inline constexpr std::string_view kGraphLabel = "serving.kserve.io/inferencegraph";
inline constexpr std::string_view kModelDir = "/mnt/models";

// What every object of one InferenceService or InferenceGraph shares.
struct Owner {
  std::string name;
  std::string namespace_name;
  std::string owner_label;                         // kIsvcLabel or kGraphLabel
  std::map<std::string, std::string> labels;       // the resource's metadata.labels
  std::map<std::string, std::string> annotations;  // the resource's metadata.annotations
  Mode mode = Mode::kStandard;
};

// Labels on every object of `owner`'s component (component empty for graphs): managed-by, the
// owner label, `component`, then the user's labels (ours win on a clash).
Json ObjectLabels(const Owner& owner, const std::string& component);
Json ObjectMeta(const Owner& owner, const std::string& name, const std::string& component);

// The runtimes a document may select: the input's, then Quiver's built-ins not shadowed by name.
struct RuntimeCatalog {
  std::map<std::string, std::vector<spec::ServingRuntime>> by_namespace;
  std::vector<spec::ServingRuntime> cluster;
  std::map<std::string, Json> docs;  // "namespace/name" ("/name" for cluster runtimes) → doc
};

// One component to turn into a pod: the predictor, a spec.canary[] predictor, the transformer
// or the explainer.
struct ComponentInput {
  spec::ComponentType type = spec::ComponentType::kPredictor;
  std::string object_name;  // "{isvc}-predictor", "{isvc}-predictor-{canary}", ...
  const spec::ComponentSpec* spec = nullptr;
  const Json* json = nullptr;  // the defaulted component JSON, for pass-through fields
  std::string path;            // "spec.predictor", "spec.canary[0].predictor" (error messages)
  // For transformer and explainer: where and how to reach the predictor.
  std::string predictor_host;
  spec::Protocol predictor_protocol = spec::Protocol::kV1;
};

struct Workload {
  Json pod_spec;                 // a core/v1 PodSpec
  Json pod_labels;               // object, without the selector labels
  Json pod_annotations;          // object
  int http_port = 8080;          // the serving port (the Service's and Knative's target)
  std::optional<int> grpc_port;  // Quiver's second port (standard mode)
  bool quiver = false;           // the main container runs `quiver`
};

StatusOr<Workload> BuildComponentWorkload(const Owner& owner, const ComponentInput& input,
                                          const RuntimeCatalog& runtimes,
                                          const RenderOptions& options);

// The `quiver router` pod of an InferenceGraph; `graph_config_map` holds graph.json.
Workload BuildRouterWorkload(const Owner& owner, const Json& graph_spec,
                             const std::string& graph_config_map, const RenderOptions& options);

// The scaling fields shared by components and graphs, read from the validated JSON.
struct Scaling {
  int min_replicas = 1;
  std::optional<int> max_replicas;
  std::optional<int> scale_target;
  std::optional<std::string> scale_metric;  // as written; unset when the manifest has none
  std::optional<std::string> scale_metric_type;
  int container_concurrency = 0;
  std::optional<int> timeout_seconds;
};
Scaling ReadScaling(const Json& component);

// Standard mode: the autoscaler of Deployment `target` (HPA, KEDA ScaledObject, or none when
// the class is none/external: then `fixed_replicas` is set). `path` prefixes errors.
struct StandardScaling {
  std::optional<Json> autoscaler;
  std::optional<int> fixed_replicas;
};
StatusOr<StandardScaling> RenderStandardScaling(const Owner& owner, const std::string& target,
                                                const std::string& component,
                                                const Scaling& scaling, const std::string& path,
                                                const RenderOptions& options);

// Knative mode: the revision template's autoscaling annotations (KServe's
// SetAutoScalingAnnotations), added to `annotations`.
Status AddKnativeScaling(const Owner& owner, const Scaling& scaling, const std::string& path,
                         Json& annotations);

}  // namespace quiver::render
