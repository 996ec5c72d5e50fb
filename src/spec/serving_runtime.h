// ServingRuntime / ClusterServingRuntime (serving.kserve.io/v1alpha1): a typed view, Quiver's
// built-in ClusterServingRuntimes, KServe's runtime selection, and turning a runtime's container
// into a local process. Pure functions over value types; thread-compatible.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "spec/inference_service.h"
#include "spec/object_meta.h"
#include "spec/resource.h"

namespace quiver::spec {

struct SupportedModelFormat {
  std::string name;
  std::optional<std::string> version;
  bool auto_select = false;
  std::optional<int> priority;  // >= 1; unset ranks below every set priority
};

struct ServingRuntime {
  ObjectMeta metadata;
  bool cluster_scoped = false;  // kind ClusterServingRuntime
  std::vector<SupportedModelFormat> supported_model_formats;
  std::vector<Protocol> protocol_versions;  // empty: any protocol (as KServe treats it)
  bool multi_model = false;
  bool disabled = false;
  std::vector<ContainerSpec> containers;      // containers[0] serves; never empty once validated
  std::map<std::string, std::string> labels;  // spec.labels (pod labels)
  std::map<std::string, std::string>
      annotations;  // spec.annotations, e.g. prometheus.kserve.io/port
};

// The typed view of a ServingRuntime or ClusterServingRuntime document; errors are those of
// DefaultAndValidate.
StatusOr<ServingRuntime> ServingRuntimeFromJson(const Json& doc);

// Quiver's own ClusterServingRuntimes, compiled into the binary as YAML: quiver-sklearn,
// quiver-xgboost, quiver-pytorch, quiver-onnx and quiver-custom, each running
// `quiver serve --model_name={{.Name}} --model_dir=/mnt/models --http_port=8080
// --grpc_port=8081` with autoSelect true, priority 1 and protocols v1, v2, grpc-v2.
std::string_view BuiltinRuntimesYaml();
// The documents of BuiltinRuntimesYaml, validated (the control plane stores these at start-up
// unless the user has a runtime of the same name).
const std::vector<Json>& BuiltinRuntimeDocs();
const std::vector<ServingRuntime>& BuiltinRuntimes();

// Whether `runtime` lists `format`: names compared case-insensitively (as KServe), versions
// compared only when both give one. With `require_auto_select`, only formats marked autoSelect
// count (automatic selection); an explicitly named runtime does not need it.
bool SupportsModelFormat(const ServingRuntime& runtime, const ModelFormat& format,
                         bool require_auto_select);
bool SupportsProtocol(const ServingRuntime& runtime, Protocol protocol);

// KServe's runtime selection for a kModel predictor (GetSupportingRuntimes):
// - predictor.runtime set: the namespace runtime of that name, else the cluster runtime; an error
//   when neither exists, or it is disabled, multi-model, or does not support the model format or
//   the protocol (the message says which);
// - otherwise the first of: namespace runtimes, then cluster runtimes, each sorted by the
//   matching format's priority (higher first, unset last, stable on ties), that are not
//   disabled, not multi-model, support the protocol and list the format with autoSelect.
// A kContainers predictor is an InvalidArgument. NotFound names the format, its version and the
// protocol when nothing matches. The returned pointer points into one of the argument vectors.
StatusOr<const ServingRuntime*> SelectRuntime(const ComponentSpec& predictor,
                                              const std::vector<ServingRuntime>& namespace_runtimes,
                                              const std::vector<ServingRuntime>& cluster_runtimes);

// The runtime's serving container with the component's inlined container fields applied as
// KServe merges them: args appended to the runtime's, env merged by name (the component's value
// wins, new names appended), command and resources entries replaced when the component sets
// them, ports replaced when the component lists any.
ContainerSpec MergeContainers(const ContainerSpec& runtime_container,
                              const ComponentSpec& component);

// What a local process needs to stand in for a container.
struct LocalCommandOptions {
  // Template data, as KServe fills {{.Name}}, {{.Namespace}}, {{.Labels.k}},
  // {{.Annotations.k}} (and {{index .Labels "k"}}) from the InferenceService's metadata.
  std::string name;
  std::string namespace_name;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string model_dir;  // replaces /mnt/models; empty: left as written
  int http_port = 8080;
  std::optional<int> grpc_port;  // unset: gRPC port flags left as written
};

struct LocalCommand {
  std::vector<std::string> argv;  // command + args, substituted
  std::vector<EnvVar> env;        // the container's env, substituted, plus PORT
  std::string working_dir;
};

// Turns a container into a local process. In command, args and env values, in this order:
// 1. templates: {{.Name}}, {{.Namespace}}, {{.Labels.key}}, {{.Annotations.key}},
//    {{index .Labels "key"}}, {{index .Annotations "key"}}; any other {{...}} is an error;
// 2. the model dir: every "/mnt/models" path (the whole value, a value starting "/mnt/models/",
//    or after '=' as in --model_dir=/mnt/models) becomes options.model_dir;
// 3. ports: the value of --http_port / --http-port (as `--flag=N` or `--flag N`) becomes
//    options.http_port, and of --grpc_port / --grpc-port options.grpc_port when set.
// PORT=<http_port> is set in env (replacing any PORT), as Knative does for every container.
// An empty argv (a container with only an image) is an error.
StatusOr<LocalCommand> BuildLocalCommand(const ContainerSpec& container,
                                         const LocalCommandOptions& options);

}  // namespace quiver::spec
