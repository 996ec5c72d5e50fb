// A typed view of a validated InferenceGraph (serving.kserve.io/v1alpha1) for the gateway's graph
// router. Plain value types built by a pure function; thread-compatible.
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

enum class RouterType { kSequence, kSwitch, kEnsemble, kSplitter };
std::string_view RouterTypeName(RouterType type);  // "Sequence", "Switch", ...

// A Hard step's failure ends the graph with that step's answer; a Soft one does not.
enum class StepDependency { kSoft, kHard };

struct InferenceStep {
  std::string name;  // optional; Ensemble keys its response by it (or the index)
  // Exactly one of the three targets is set.
  std::string service_name;       // an InferenceService in the graph's namespace
  std::string service_url;        // an http(s) URL called as is
  std::string node_name;          // another node of this graph
  std::string data = "$request";  // "$request" or "$response" (the previous step's answer)
  std::string condition;          // GJSON path; empty: always
  std::optional<int> weight;      // Splitter only; the weights of a node sum to 100
  StepDependency dependency = StepDependency::kSoft;
  bool map_predictions_to_instances = false;
  // Quiver's v2 chaining (`mapOutputsToInputs: true` or `{output: input, ...}`): the Open
  // Inference Protocol response this step is sent becomes a v2 request whose inputs are its
  // outputs, same names (true) or renamed, and only those named, by the map.
  bool map_outputs_to_inputs = false;
  std::map<std::string, std::string> output_to_input;
};

struct InferenceRouter {
  RouterType router_type = RouterType::kSequence;
  std::vector<InferenceStep> steps;
};

// routerTimeouts, seconds; KServe's defaults when unset.
struct RouterTimeouts {
  int server_read = 60;
  int server_write = 60;
  int server_idle = 180;
  std::optional<int> service_client;
};

struct InferenceGraph {
  ObjectMeta metadata;
  std::map<std::string, InferenceRouter> nodes;  // always has "root"
  std::optional<int> timeout_seconds;
  RouterTimeouts router_timeouts;
  int min_replicas = 1;
  std::optional<int> max_replicas;  // unset (or 0): no limit
  std::optional<int> scale_target;
  ScaleMetric scale_metric = ScaleMetric::kConcurrency;
};

// The typed view of an InferenceGraph document; errors are those of DefaultAndValidate.
// Validation: nodes.root exists; each step has exactly one of serviceName, serviceUrl,
// nodeName; nodeName names an existing node and the nodeName references have no cycle; a
// Splitter's steps all have a weight and the weights sum to 100; weight only on Splitter steps.
StatusOr<InferenceGraph> InferenceGraphFromJson(const Json& doc);

}  // namespace quiver::spec
