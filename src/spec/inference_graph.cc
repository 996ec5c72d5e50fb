#include "spec/inference_graph.h"

#include <functional>
#include <set>

#include "spec/validators.h"

namespace quiver::spec {

std::string_view RouterTypeName(RouterType type) {
  switch (type) {
    case RouterType::kSequence:
      return "Sequence";
    case RouterType::kSwitch:
      return "Switch";
    case RouterType::kEnsemble:
      return "Ensemble";
    case RouterType::kSplitter:
      return "Splitter";
  }
  return "Sequence";
}

namespace {

bool Present(const Json& object, std::string_view key) {
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

std::optional<int> ReadPositive(const Json& object, std::string_view key, std::string_view path,
                                int64_t min, FieldErrors& errors) {
  std::optional<int64_t> value = ReadInt(object, key, path, errors);
  if (!value) return std::nullopt;
  if (*value < min) {
    errors.Add(FieldPath(path, key),
               "must be >= " + std::to_string(min) + ", got " + std::to_string(*value));
    return std::nullopt;
  }
  return static_cast<int>(*value);
}

InferenceStep ParseStep(const Json& item, const std::string& path, FieldErrors& errors) {
  InferenceStep step;
  if (!item.is_object()) {
    errors.Add(path, "must be an object, got " + Describe(item));
    return step;
  }
  CheckKnownFields(item, path,
                   {"name", "serviceName", "serviceUrl", "nodeName", "data", "condition", "weight",
                    "dependency", "mapPredictionsToInstances", "mapOutputsToInputs"},
                   {}, errors);
  step.name = ReadString(item, "name", path, errors).value_or("");
  step.service_name = ReadString(item, "serviceName", path, errors).value_or("");
  step.service_url = ReadString(item, "serviceUrl", path, errors).value_or("");
  step.node_name = ReadString(item, "nodeName", path, errors).value_or("");
  std::vector<std::string> targets;
  for (std::string_view key : {"serviceName", "serviceUrl", "nodeName"}) {
    if (Present(item, key)) targets.emplace_back(key);
  }
  if (targets.size() != 1) {
    errors.Add(path,
               "exactly one of serviceName, serviceUrl, nodeName is required, got " +
                   (targets.empty()       ? std::string("none")
                    : targets.size() == 2 ? targets[0] + " and " + targets[1]
                                          : targets[0] + ", " + targets[1] + " and " + targets[2]));
  }
  if (Present(item, "serviceName") && !IsDns1035Label(step.service_name) &&
      item["serviceName"].is_string()) {
    errors.Add(FieldPath(path, "serviceName"),
               "must be an InferenceService name (a DNS-1035 label), got " +
                   Json(step.service_name).dump());
  }
  if (!step.service_url.empty() && step.service_url.rfind("http://", 0) != 0 &&
      step.service_url.rfind("https://", 0) != 0) {
    errors.Add(FieldPath(path, "serviceUrl"),
               "must be an http:// or https:// URL, got " + Json(step.service_url).dump());
  }
  if (auto data = ReadString(item, "data", path, errors)) {
    if (CheckEnum(*data, {"$request", "$response"}, FieldPath(path, "data"), errors)) {
      step.data = *data;
    }
  }
  step.condition = ReadString(item, "condition", path, errors).value_or("");
  if (auto weight = ReadInt(item, "weight", path, errors)) {
    if (*weight < 0 || *weight > 100) {
      errors.Add(FieldPath(path, "weight"),
                 "must be between 0 and 100, got " + std::to_string(*weight));
    } else {
      step.weight = static_cast<int>(*weight);
    }
  }
  if (auto dependency = ReadString(item, "dependency", path, errors)) {
    if (CheckEnum(*dependency, {"Soft", "Hard"}, FieldPath(path, "dependency"), errors)) {
      step.dependency = *dependency == "Hard" ? StepDependency::kHard : StepDependency::kSoft;
    }
  }
  step.map_predictions_to_instances =
      ReadBool(item, "mapPredictionsToInstances", path, errors).value_or(false);
  if (auto it = item.find("mapOutputsToInputs"); it != item.end() && !it->is_null()) {
    std::string map_path = FieldPath(path, "mapOutputsToInputs");
    if (it->is_boolean()) {
      step.map_outputs_to_inputs = it->get<bool>();
    } else if (it->is_object() && !it->empty()) {
      step.map_outputs_to_inputs = true;
      for (const auto& [output, input] : it->items()) {
        if (!input.is_string() || input.get<std::string>().empty()) {
          errors.Add(FieldPath(map_path, output),
                     "must be the name of the next model's input (a non-empty string), got " +
                         Describe(input));
        } else {
          step.output_to_input[output] = input.get<std::string>();
        }
      }
    } else {
      errors.Add(map_path,
                 "must be true, false or a non-empty map of output name to input name, got " +
                     Describe(*it));
    }
    if (step.map_outputs_to_inputs && step.map_predictions_to_instances) {
      errors.Add(map_path, "cannot be combined with mapPredictionsToInstances (one step gets "
                           "either a v1 or a v2 request)");
    }
  }
  return step;
}

}  // namespace

InferenceGraph ParseInferenceGraph(const Json& doc, FieldErrors& errors) {
  InferenceGraph graph;
  graph.metadata = ReadObjectMeta(doc);
  auto spec_it = doc.find("spec");
  if (spec_it == doc.end() || spec_it->is_null()) {
    errors.Add("spec", "required (an InferenceGraph needs spec.nodes.root)");
    return graph;
  }
  const Json& spec = *spec_it;
  if (!spec.is_object()) {
    errors.Add("spec", "must be an object, got " + Describe(spec));
    return graph;
  }
  CheckKnownFields(
      spec, "spec",
      {"nodes", "timeout", "routerTimeouts", "minReplicas", "maxReplicas", "scaleTarget",
       "scaleMetric"},
      {"resources", "affinity", "tolerations", "nodeSelector", "nodeName", "serviceAccountName"},
      errors);
  if (Present(spec, "timeout")) {
    graph.timeout_seconds = ReadPositive(spec, "timeout", "spec", 1, errors);
  }
  if (const Json* timeouts = ReadObject(spec, "routerTimeouts", "spec", errors)) {
    std::string path = "spec.routerTimeouts";
    CheckKnownFields(*timeouts, path, {"serverRead", "serverWrite", "serverIdle", "serviceClient"},
                     {}, errors);
    RouterTimeouts& out = graph.router_timeouts;
    if (auto v = ReadPositive(*timeouts, "serverRead", path, 1, errors)) out.server_read = *v;
    if (auto v = ReadPositive(*timeouts, "serverWrite", path, 1, errors)) out.server_write = *v;
    if (auto v = ReadPositive(*timeouts, "serverIdle", path, 1, errors)) out.server_idle = *v;
    out.service_client = ReadPositive(*timeouts, "serviceClient", path, 1, errors);
  }
  if (auto v = ReadPositive(spec, "minReplicas", "spec", 0, errors)) graph.min_replicas = *v;
  if (auto v = ReadPositive(spec, "maxReplicas", "spec", 0, errors)) {
    if (*v > 0) {
      if (*v < graph.min_replicas) {
        errors.Add("spec.maxReplicas", "must be >= minReplicas (" +
                                           std::to_string(graph.min_replicas) + "), got " +
                                           std::to_string(*v));
      }
      graph.max_replicas = *v;
    }
  }
  graph.scale_target = ReadPositive(spec, "scaleTarget", "spec", 1, errors);
  if (auto metric = ReadString(spec, "scaleMetric", "spec", errors)) {
    if (CheckEnum(*metric, {"cpu", "memory", "concurrency", "rps"}, "spec.scaleMetric", errors)) {
      graph.scale_metric = *metric == "cpu"      ? ScaleMetric::kCpu
                           : *metric == "memory" ? ScaleMetric::kMemory
                           : *metric == "rps"    ? ScaleMetric::kRps
                                                 : ScaleMetric::kConcurrency;
    }
  }

  const Json* nodes = ReadObject(spec, "nodes", "spec", errors);
  if (nodes == nullptr) {
    if (!Present(spec, "nodes")) errors.Add("spec.nodes", "required, with a node named root");
    return graph;
  }
  for (const auto& [node_name, node] : nodes->items()) {
    std::string path = FieldPath("spec.nodes", node_name);
    if (!node.is_object()) {
      errors.Add(path, "must be an object with routerType and steps, got " + Describe(node));
      continue;
    }
    CheckKnownFields(node, path, {"routerType", "steps"}, {}, errors);
    InferenceRouter router;
    std::optional<std::string> type = ReadString(node, "routerType", path, errors);
    if (!type) {
      if (!Present(node, "routerType")) {
        errors.Add(FieldPath(path, "routerType"), "required: Sequence|Switch|Ensemble|Splitter");
      }
    } else if (CheckEnum(*type, {"Sequence", "Switch", "Ensemble", "Splitter"},
                         FieldPath(path, "routerType"), errors)) {
      router.router_type = *type == "Switch"     ? RouterType::kSwitch
                           : *type == "Ensemble" ? RouterType::kEnsemble
                           : *type == "Splitter" ? RouterType::kSplitter
                                                 : RouterType::kSequence;
    }
    const Json* steps = ReadArray(node, "steps", path, errors);
    std::string steps_path = FieldPath(path, "steps");
    if (steps == nullptr || steps->empty()) {
      if (steps != nullptr || !Present(node, "steps")) {
        errors.Add(steps_path, "required: at least one step");
      }
    } else {
      for (size_t i = 0; i < steps->size(); ++i) {
        router.steps.push_back(ParseStep((*steps)[i], IndexPath(steps_path, i), errors));
      }
    }
    bool splitter = type && *type == "Splitter";
    int weight_sum = 0;
    bool weights_complete = true;
    for (size_t i = 0; i < router.steps.size(); ++i) {
      const InferenceStep& step = router.steps[i];
      std::string step_path = IndexPath(steps_path, i);
      bool has_weight =
          steps != nullptr && (*steps)[i].is_object() && Present((*steps)[i], "weight");
      if (splitter && !has_weight) {
        errors.Add(FieldPath(step_path, "weight"), "required on a Splitter's steps");
        weights_complete = false;
      } else if (!splitter && has_weight) {
        errors.Add(FieldPath(step_path, "weight"),
                   "only a Splitter's steps take a weight (this node is a " +
                       std::string(RouterTypeName(router.router_type)) + ")");
      }
      if (step.weight) {
        weight_sum += *step.weight;
      } else {
        weights_complete = false;
      }
    }
    if (splitter && weights_complete && !router.steps.empty() && weight_sum != 100) {
      errors.Add(steps_path, "the weights of a Splitter's steps must sum to 100, got " +
                                 std::to_string(weight_sum));
    }
    graph.nodes.emplace(node_name, std::move(router));
  }
  if (!nodes->contains("root")) {
    errors.Add("spec.nodes.root", "required: the graph's entry node must be named root");
  }
  // nodeName references: every target exists, and following them never comes back.
  for (const auto& [node_name, router] : graph.nodes) {
    for (size_t i = 0; i < router.steps.size(); ++i) {
      const std::string& target = router.steps[i].node_name;
      if (!target.empty() && !nodes->contains(target)) {
        errors.Add(FieldPath(IndexPath(FieldPath(FieldPath("spec.nodes", node_name), "steps"), i),
                             "nodeName"),
                   "no node named " + Json(target).dump() + " in spec.nodes");
      }
    }
  }
  std::map<std::string, int> state;  // 0 unvisited, 1 on the current path, 2 done
  std::vector<std::string> stack;
  bool cycle_reported = false;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    state[name] = 1;
    stack.push_back(name);
    auto it = graph.nodes.find(name);
    if (it != graph.nodes.end()) {
      for (const InferenceStep& step : it->second.steps) {
        if (step.node_name.empty() || !graph.nodes.count(step.node_name)) continue;
        int next = state[step.node_name];
        if (next == 1 && !cycle_reported) {
          std::string loop;
          bool in_loop = false;
          for (const std::string& on_path : stack) {
            if (on_path == step.node_name) in_loop = true;
            if (in_loop) loop += on_path + " -> ";
          }
          loop += step.node_name;
          errors.Add("spec.nodes", "nodeName references form a cycle: " + loop);
          cycle_reported = true;
        } else if (next == 0) {
          visit(step.node_name);
        }
      }
    }
    stack.pop_back();
    state[name] = 2;
  };
  for (const auto& [node_name, router] : graph.nodes) {
    if (state[node_name] == 0) visit(node_name);
  }
  return graph;
}

StatusOr<InferenceGraph> InferenceGraphFromJson(const Json& doc) {
  if (!doc.is_object()) return InvalidArgument("an InferenceGraph must be an object");
  FieldErrors errors;
  InferenceGraph graph = ParseInferenceGraph(doc, errors);
  if (!errors.empty()) return errors.ToStatus();
  return graph;
}

}  // namespace quiver::spec
