// A typed, defaulted view of a validated InferenceService (serving.kserve.io/v1beta1) for the
// reconciler, and the fingerprint that tells when a component needs a new revision.
// Plain value types built by pure functions; thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "spec/object_meta.h"
#include "spec/resource.h"

namespace quiver::spec {

// KServe's protocolVersion values. Unset means v1 (ModelSpec.GetProtocol).
enum class Protocol { kV1, kV2, kGrpcV1, kGrpcV2 };
std::string_view ProtocolName(Protocol protocol);  // "v1", "v2", "grpc-v1", "grpc-v2"
std::optional<Protocol> ParseProtocol(std::string_view name);

// scaleMetric; unset means concurrency (Knative KPA's default).
enum class ScaleMetric { kConcurrency, kRps, kCpu, kMemory };
std::string_view ScaleMetricName(ScaleMetric metric);  // "concurrency", "rps", "cpu", "memory"

// logger.mode; unset means all.
enum class LoggerMode { kAll, kRequest, kResponse };
std::string_view LoggerModeName(LoggerMode mode);  // "all", "request", "response"

enum class ComponentType { kPredictor, kTransformer, kExplainer };
std::string_view ComponentTypeName(ComponentType type);  // "predictor", ...

struct EnvVar {
  std::string name;
  std::string value;
  bool operator==(const EnvVar&) const = default;
};

// Quantities as written ("500m", "1Gi"; bare numbers printed as "1"); see quantity.h.
struct ResourceRequirements {
  std::map<std::string, std::string> requests;
  std::map<std::string, std::string> limits;
};

struct ContainerPort {
  std::string name;
  int container_port = 0;
  std::string protocol = "TCP";
};

// The part of a Kubernetes container a local process can honour.
struct ContainerSpec {
  std::string name;
  std::string image;  // informational locally; Quiver runs `command` + `args`
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string working_dir;
  std::vector<EnvVar> env;
  std::vector<ContainerPort> ports;
  ResourceRequirements resources;
};

struct ModelFormat {
  std::string name;                    // "sklearn", "xgboost", ...
  std::optional<std::string> version;  // "1", "2"
};

// batcher: KServe's agent defaults (maxBatchSize 32, maxLatency 5000 ms) when a field is unset.
struct BatcherSpec {
  int max_batch_size = 32;
  int max_latency_ms = 5000;
  std::optional<int> timeout_seconds;
};

struct LoggerSpec {
  std::string url;  // required locally: there is no default broker
  LoggerMode mode = LoggerMode::kAll;
  std::vector<std::string> metadata_headers;      // request headers copied into the event
  std::vector<std::string> metadata_annotations;  // isvc annotations copied into the event
};

// One of predictor, transformer, explainer.
struct ComponentSpec {
  enum class Kind {
    kModel,       // predictor.model, or a legacy framework key (`sklearn:`) normalised to it
    kContainers,  // custom containers (always for transformer and explainer)
  };
  Kind kind = Kind::kModel;

  // kModel: what to serve and with which runtime.
  ModelFormat model_format;
  std::string runtime;  // explicit ServingRuntime/ClusterServingRuntime name; empty: auto-select
  std::string runtime_version;
  // kModel: model.storageUri. kContainers: the STORAGE_URI env of containers[0], which is how
  // KServe asks for a storage initializer for a custom container. Empty when none.
  std::string storage_uri;
  Protocol protocol_version = Protocol::kV1;
  // kModel: fields of the container inlined in the model spec; merged onto the runtime's
  // container by MergeContainers (serving_runtime.h).
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<EnvVar> env;
  ResourceRequirements resources;
  std::vector<ContainerPort> ports;

  // kContainers: containers[0] is the serving container.
  std::vector<ContainerSpec> containers;

  // ComponentExtensionSpec.
  int min_replicas = 1;             // 0 enables scale to zero
  std::optional<int> max_replicas;  // unset (or 0 in the manifest): no limit
  std::optional<int> scale_target;
  ScaleMetric scale_metric = ScaleMetric::kConcurrency;
  std::optional<std::string> scale_metric_type;  // Utilization|Value|AverageValue
  int container_concurrency = 0;                 // 0: no hard limit
  std::optional<int> timeout_seconds;
  std::optional<int> canary_traffic_percent;
  std::optional<BatcherSpec> batcher;
  std::optional<LoggerSpec> logger;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;

  // Hex digest of the component's defaulted spec as canonical JSON (keys sorted), without
  // canaryTrafficPercent: equal fingerprints mean the same revision. Changing only the traffic
  // split does not make a new revision (as in Knative, where it lives on the route); anything
  // else, including minReplicas and annotations, does (Knative keeps those on the revision).
  std::string fingerprint;
};

struct InferenceService {
  ObjectMeta metadata;
  ComponentSpec predictor;
  std::optional<ComponentSpec> transformer;
  std::optional<ComponentSpec> explainer;
};

// The Pod fields a component may inline (KServe's PodSpec plus deploymentStrategy): accepted by
// validation; `quiver up` ignores them (one machine schedules nothing), `quiver render` passes
// them through to the Deployment.
const std::vector<std::string_view>& InlinedPodFields();

// The typed view of an InferenceService document. Defaults are applied to a copy first, so a
// document that passed DefaultAndValidate and the same document before defaulting give the same
// view and fingerprints. Errors (when the document is not a valid InferenceService) are those
// of DefaultAndValidate.
StatusOr<InferenceService> InferenceServiceFromJson(const Json& doc);

// The fingerprint of one component's JSON (spec.predictor, ...), as ComponentSpec::fingerprint:
// 16 hex digits of FNV-1a 64 over the canonical JSON. For change detection, not security.
std::string ComponentFingerprint(const Json& component);

}  // namespace quiver::spec
