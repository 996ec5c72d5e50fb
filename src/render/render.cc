#include "render/render.h"

#include <set>

#include "render/workload.h"
#include "spec/inference_graph.h"
#include "spec/inference_service.h"
#include "spec/resource.h"
#include "spec/serving_runtime.h"

namespace quiver::render {
namespace {

using spec::ComponentType;

bool Has(const Json& object, std::string_view key) {
  if (!object.is_object()) return false;
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

bool IsDnsLabel(const std::string& name) {
  if (name.empty() || name.size() > 63 || name.front() == '-' || name.back() == '-') return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// Kubernetes object names that are also DNS labels (Services, Knative revisions): 63 at most.
Status CheckDnsLabelLength(const std::string& name, const std::string& what) {
  if (name.size() > 63) {
    return InvalidArgument(what + " name " + Json(name).dump() + " is " +
                           std::to_string(name.size()) +
                           " characters; Kubernetes allows 63: shorten metadata.name");
  }
  return Status::Ok();
}

std::string Describe(const spec::Manifest& manifest) {
  std::string out = manifest.source;
  const Json& doc = manifest.doc;
  if (doc.is_object() && Has(doc, "kind") && doc["kind"].is_string()) {
    out += " (" + doc["kind"].get<std::string>();
    if (Has(doc, "metadata") && Has(doc["metadata"], "name") &&
        doc["metadata"]["name"].is_string()) {
      out += " " + doc["metadata"]["name"].get<std::string>();
    }
    out += ")";
  }
  return out;
}

// Replaces "spec.predictor" at the start of each "; "-joined error with `prefix`.
std::string Reprefix(const std::string& message, const std::string& prefix) {
  std::string out;
  size_t pos = 0;
  const std::string from = "spec.predictor";
  while (pos <= message.size()) {
    size_t end = message.find("; ", pos);
    std::string part =
        message.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (part.rfind(from, 0) == 0) part = prefix + part.substr(from.size());
    if (!out.empty()) out += "; ";
    out += part;
    if (end == std::string::npos) break;
    pos = end + 2;
  }
  return out;
}

std::optional<Mode> ModeOf(const Json& doc, const RenderOptions& options, Status& error) {
  if (options.mode) return options.mode;
  const Json& annotations = doc["metadata"].value("annotations", Json::object());
  auto it = annotations.find("serving.kserve.io/deploymentMode");
  if (it == annotations.end() || !it->is_string()) return Mode::kStandard;
  std::string value = it->get<std::string>();
  if (auto mode = ParseMode(value)) return mode;
  error = InvalidArgument(
      "metadata.annotations[serving.kserve.io/deploymentMode]: " + Json(value).dump() +
      " cannot be rendered; expected Standard (RawDeployment) or Knative (Serverless), or pass "
      "--mode");
  return std::nullopt;
}

Owner MakeOwner(const Json& doc, std::string_view owner_label, Mode mode) {
  spec::ObjectMeta meta = spec::ReadObjectMeta(doc);
  Owner owner;
  owner.name = meta.name;
  owner.namespace_name = meta.namespace_name;
  owner.owner_label = std::string(owner_label);
  owner.labels = meta.labels;
  owner.annotations = meta.annotations;
  owner.mode = mode;
  return owner;
}

// spec.canary[] (KServe's Standard-mode canary, PR #5672): predictors with fixed replicas that
// take trafficPercent of the requests. Quiver's spec package does not model it (`quiver up`
// uses canaryTrafficPercent), so the renderer validates each entry as a predictor of its own.
struct Canary {
  std::string name;
  int traffic_percent = 0;
  Json doc;  // a validated InferenceService holding just this predictor
  spec::InferenceService isvc;
};

StatusOr<std::vector<Canary>> ParseCanaries(const Json& canary_list, const Json& isvc_doc,
                                            const RenderOptions& options) {
  std::vector<Canary> out;
  if (!canary_list.is_array()) {
    return InvalidArgument("spec.canary: must be a list of {predictor, trafficPercent}");
  }
  std::set<std::string> names;
  int sum = 0;
  std::vector<std::string> errors;
  for (size_t i = 0; i < canary_list.size(); ++i) {
    std::string path = "spec.canary[" + std::to_string(i) + "]";
    const Json& entry = canary_list[i];
    if (!entry.is_object()) {
      errors.push_back(path + ": must be an object with predictor and trafficPercent");
      continue;
    }
    for (const auto& [key, value] : entry.items()) {
      (void)value;
      if (key != "predictor" && key != "trafficPercent") {
        errors.push_back(path + "." + key + ": unknown field; expected predictor, trafficPercent");
      }
    }
    Canary canary;
    if (!Has(entry, "trafficPercent") || !entry["trafficPercent"].is_number_integer() ||
        entry["trafficPercent"].get<int64_t>() < 0 ||
        entry["trafficPercent"].get<int64_t>() > 100) {
      errors.push_back(path + ".trafficPercent: required, an integer from 0 to 100" +
                       (Has(entry, "trafficPercent") ? ", got " + entry["trafficPercent"].dump()
                                                     : std::string()));
    } else {
      canary.traffic_percent = entry["trafficPercent"].get<int>();
      sum += canary.traffic_percent;
    }
    if (!Has(entry, "predictor") || !entry["predictor"].is_object()) {
      errors.push_back(path + ".predictor: required, a predictor with a name");
      continue;
    }
    const Json& predictor = entry["predictor"];
    if (!Has(predictor, "name") || !predictor["name"].is_string() ||
        !IsDnsLabel(predictor["name"].get<std::string>())) {
      errors.push_back(path +
                       ".predictor.name: required, a DNS label (lower-case letters, "
                       "digits and '-') that names this canary");
      continue;
    }
    canary.name = predictor["name"].get<std::string>();
    if (!names.insert(canary.name).second) {
      errors.push_back(path + ".predictor.name: " + Json(canary.name).dump() +
                       " is used by another canary");
    }
    // Canaries run fixed replicas (KServe rejects autoscaling fields on them).
    for (std::string_view key :
         {"maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling"}) {
      if (Has(predictor, key)) {
        errors.push_back(path + ".predictor." + std::string(key) +
                         ": not allowed on a canary (canaries run minReplicas fixed replicas)");
      }
    }
    Json doc = Json::object();
    doc["apiVersion"] = isvc_doc["apiVersion"];
    doc["kind"] = isvc_doc["kind"];
    doc["metadata"] = isvc_doc["metadata"];
    doc["spec"] = Json{{"predictor", predictor}};
    Status status = spec::DefaultAndValidate(doc, options.default_namespace);
    if (!status.ok()) {
      errors.push_back(Reprefix(status.message(), path + ".predictor"));
      continue;
    }
    StatusOr<spec::InferenceService> isvc = spec::InferenceServiceFromJson(doc);
    if (!isvc.ok()) {
      errors.push_back(Reprefix(isvc.status().message(), path + ".predictor"));
      continue;
    }
    canary.doc = std::move(doc);
    canary.isvc = std::move(*isvc);
    out.push_back(std::move(canary));
  }
  if (sum > 100) {
    errors.push_back("spec.canary: the trafficPercent values add up to " + std::to_string(sum) +
                     "; at most 100");
  }
  if (!errors.empty()) {
    std::string joined;
    for (const std::string& e : errors) joined += (joined.empty() ? "" : "; ") + e;
    return InvalidArgument(joined);
  }
  return out;
}

Json Deployment(const Owner& owner, const std::string& name, const std::string& component,
                const Json& selector, const Workload& workload, std::optional<int> replicas,
                const Json& strategy) {
  Json pod_labels = selector;
  Json owner_labels = ObjectLabels(owner, component);
  for (const auto& [k, v] : owner_labels.items()) {
    if (!pod_labels.contains(k)) pod_labels[k] = v;
  }
  for (const auto& [k, v] : workload.pod_labels.items()) {
    if (!pod_labels.contains(k)) pod_labels[k] = v;
  }
  Json template_meta = Json{{"labels", pod_labels}};
  if (!workload.pod_annotations.empty()) template_meta["annotations"] = workload.pod_annotations;
  Json spec = Json::object();
  if (replicas) spec["replicas"] = *replicas;
  spec["selector"] = Json{{"matchLabels", selector}};
  if (!strategy.is_null()) spec["strategy"] = strategy;
  spec["template"] = Json{{"metadata", template_meta}, {"spec", workload.pod_spec}};
  return Json{{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", ObjectMeta(owner, name, component)},
              {"spec", spec}};
}

Json Service(const Owner& owner, const std::string& name, const std::string& component,
             const Json& selector, const Workload& workload) {
  Json ports = Json::array();
  ports.push_back(Json{
      {"name", "http"}, {"port", 80}, {"targetPort", workload.http_port}, {"protocol", "TCP"}});
  if (workload.grpc_port) {
    ports.push_back(Json{{"name", "grpc"},
                         {"port", *workload.grpc_port},
                         {"targetPort", *workload.grpc_port},
                         {"protocol", "TCP"},
                         {"appProtocol", "kubernetes.io/h2c"}});
  }
  return Json{{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", ObjectMeta(owner, name, component)},
              {"spec", Json{{"type", "ClusterIP"}, {"selector", selector}, {"ports", ports}}}};
}

Json BackendRef(const std::string& service, std::optional<int> weight) {
  Json ref = Json{{"group", ""}, {"kind", "Service"}, {"name", service}, {"port", 80}};
  if (weight) ref["weight"] = *weight;
  return ref;
}

Json HttpRoute(const Owner& owner, const Json& rules, const RenderOptions& options) {
  Json parent = Json{{"group", "gateway.networking.k8s.io"},
                     {"kind", "Gateway"},
                     {"name", options.gateway_name},
                     {"namespace", options.gateway_namespace}};
  return Json{{"apiVersion", "gateway.networking.k8s.io/v1"},
              {"kind", "HTTPRoute"},
              {"metadata", ObjectMeta(owner, owner.name, "")},
              {"spec", Json{{"parentRefs", Json::array({parent})},
                            {"hostnames", Json::array({owner.name + "-" + owner.namespace_name +
                                                       "." + options.domain})},
                            {"rules", rules}}}};
}

Json PrefixRule(const Json& backends, std::optional<int> timeout_seconds) {
  Json rule =
      Json{{"matches", Json::array({Json{{"path", Json{{"type", "PathPrefix"}, {"value", "/"}}}}})},
           {"backendRefs", backends}};
  if (timeout_seconds) rule["timeouts"] = Json{{"request", std::to_string(*timeout_seconds) + "s"}};
  return rule;
}

// A Knative Service. The revision is named after a digest of its template, so that the same
// input gives the same name and a changed one a new name (Knative rejects a changed template
// that keeps its name), and canary traffic can name revisions.
StatusOr<Json> KnativeService(const Owner& owner, const std::string& name,
                              const std::string& component, const Workload& workload,
                              const Scaling& scaling, const std::string& path,
                              const Json& ksvc_labels, const Json& traffic_in,
                              const std::optional<int>& canary_percent,
                              const std::string& previous_revision) {
  QUIVER_RETURN_IF_ERROR(CheckDnsLabelLength(name + "-00000000", "Knative revision"));
  Json annotations = workload.pod_annotations;
  QUIVER_RETURN_IF_ERROR(AddKnativeScaling(owner, scaling, path, annotations));
  Json labels = ObjectLabels(owner, component);
  for (const auto& [k, v] : workload.pod_labels.items()) {
    if (!labels.contains(k)) labels[k] = v;
  }
  Json pod = Json::object();
  if (scaling.container_concurrency > 0)
    pod["containerConcurrency"] = scaling.container_concurrency;
  if (scaling.timeout_seconds) {
    pod["timeoutSeconds"] = *scaling.timeout_seconds;
    pod["responseStartTimeoutSeconds"] = *scaling.timeout_seconds;
  }
  for (const auto& [k, v] : workload.pod_spec.items()) pod[k] = v;
  Json template_json =
      Json{{"metadata", Json{{"labels", labels}, {"annotations", annotations}}}, {"spec", pod}};
  std::string revision = name + "-" + spec::ComponentFingerprint(template_json).substr(0, 8);
  Json named_meta = Json{{"name", revision}, {"labels", labels}, {"annotations", annotations}};
  template_json["metadata"] = named_meta;

  Json traffic = traffic_in;
  if (traffic.is_null()) {
    bool tags = owner.annotations.count("serving.kserve.io/enable-tag-routing") &&
                owner.annotations.at("serving.kserve.io/enable-tag-routing") == "true";
    // KServe's ksvc reconciler: with canaryTrafficPercent and a rolled-out revision, the
    // latest ready revision gets the percent and the previous one the rest (tag "prev").
    traffic = Json::array();
    if (canary_percent && !previous_revision.empty()) {
      Json latest = Json{{"latestRevision", true}, {"percent", *canary_percent}};
      if (tags) latest["tag"] = "latest";
      traffic.push_back(latest);
      if (*canary_percent < 100) {
        traffic.push_back(Json{{"revisionName", previous_revision},
                               {"latestRevision", false},
                               {"percent", 100 - *canary_percent},
                               {"tag", "prev"}});
      }
    } else {
      Json latest = Json{{"latestRevision", true}, {"percent", 100}};
      if (tags) latest["tag"] = "latest";
      traffic.push_back(latest);
    }
  }
  Json meta = Json{{"name", name}, {"namespace", owner.namespace_name}, {"labels", ksvc_labels}};
  if (auto it = owner.annotations.find("serving.knative.dev/rollout-duration");
      it != owner.annotations.end()) {
    meta["annotations"] = Json{{it->first, it->second}};
  }
  return Json{{"apiVersion", "serving.knative.dev/v1"},
              {"kind", "Service"},
              {"metadata", meta},
              {"spec", Json{{"template", template_json}, {"traffic", traffic}}}};
}

// The URL KServe's graph controller resolves a serviceName step to: the service's entry
// component (transformer if it has one) and the predict path of its protocol.
std::string StepUrl(const std::string& service, const std::string& ns,
                    const std::map<std::string, const spec::InferenceService*>& known) {
  std::string component = "predictor";
  spec::Protocol protocol = spec::Protocol::kV1;
  if (auto it = known.find(ns + "/" + service); it != known.end()) {
    if (it->second->transformer) component = "transformer";
    protocol = it->second->predictor.protocol_version;
  }
  std::string path = protocol == spec::Protocol::kV1 ? "/v1/models/" + service + ":predict"
                                                     : "/v2/models/" + service + "/infer";
  return "http://" + service + "-" + component + "." + ns + ".svc.cluster.local" + path;
}

class Renderer {
 public:
  explicit Renderer(const RenderOptions& options) : options_(options) {}

  Status AddRuntime(const Json& doc) {
    QUIVER_ASSIGN_OR_RETURN(spec::ServingRuntime runtime, spec::ServingRuntimeFromJson(doc));
    std::string key = (runtime.cluster_scoped ? "" : runtime.metadata.namespace_name) + "/" +
                      runtime.metadata.name;
    if (catalog_.docs.count(key)) {
      return InvalidArgument("metadata.name: " + Json(runtime.metadata.name).dump() +
                             " is defined twice in the input");
    }
    catalog_.docs[key] = doc;
    if (runtime.cluster_scoped) {
      catalog_.cluster.push_back(std::move(runtime));
    } else {
      catalog_.by_namespace[runtime.metadata.namespace_name].push_back(std::move(runtime));
    }
    return Status::Ok();
  }

  void AddBuiltinRuntimes() {
    for (size_t i = 0; i < spec::BuiltinRuntimes().size(); ++i) {
      const spec::ServingRuntime& runtime = spec::BuiltinRuntimes()[i];
      std::string key = "/" + runtime.metadata.name;
      if (catalog_.docs.count(key)) continue;  // the input's own definition wins
      catalog_.docs[key] = spec::BuiltinRuntimeDocs()[i];
      catalog_.cluster.push_back(runtime);
    }
  }

  void Remember(const std::string& ns, const std::string& name,
                const spec::InferenceService* isvc) {
    services_[ns + "/" + name] = isvc;
  }

  StatusOr<std::vector<Json>> RenderService(const Json& doc, const std::vector<Canary>& canaries,
                                            Mode mode) {
    QUIVER_ASSIGN_OR_RETURN(spec::InferenceService isvc, spec::InferenceServiceFromJson(doc));
    Owner owner = MakeOwner(doc, kIsvcLabel, mode);
    const Json& spec_json = doc["spec"];
    const bool knative = mode == Mode::kKnative;
    if (knative && !canaries.empty()) {
      return InvalidArgument(
          "spec.canary: KServe's Standard-mode canary; in Knative mode set "
          "spec.predictor.canaryTrafficPercent instead");
    }
    if (!knative && isvc.predictor.canary_traffic_percent) {
      return InvalidArgument(
          "spec.predictor.canaryTrafficPercent: a Knative-mode rollout (it splits traffic between "
          "revisions, which a Deployment does not keep); render with --mode knative, or list the "
          "new predictor under spec.canary[] with its trafficPercent");
    }
    if (!knative && !canaries.empty() && isvc.transformer) {
      return InvalidArgument(
          "spec.canary: not supported with a transformer in Standard mode (the "
          "transformer calls the predictor's Service directly); use --mode "
          "knative and canaryTrafficPercent");
    }
    std::vector<Json> out;
    std::string predictor_name = owner.name + "-predictor";
    std::string predictor_host = predictor_name + "." + owner.namespace_name;

    struct Part {
      ComponentInput input;
      Scaling scaling;
      std::optional<std::string> canary;
      std::optional<int> canary_percent;
    };
    std::vector<Part> parts;
    auto add = [&](ComponentType type, const spec::ComponentSpec& comp, const Json& json,
                   const std::string& path, const std::string& object_name,
                   std::optional<std::string> canary, std::optional<int> percent) {
      Part part;
      part.input.type = type;
      part.input.object_name = object_name;
      part.input.spec = &comp;
      part.input.json = &json;
      part.input.path = path;
      part.input.predictor_host = predictor_host;
      part.input.predictor_protocol = isvc.predictor.protocol_version;
      part.scaling = ReadScaling(json);
      part.canary = std::move(canary);
      part.canary_percent = percent;
      parts.push_back(std::move(part));
    };
    add(ComponentType::kPredictor, isvc.predictor, spec_json["predictor"], "spec.predictor",
        predictor_name, std::nullopt, std::nullopt);
    for (size_t i = 0; i < canaries.size(); ++i) {
      const Canary& c = canaries[i];
      add(ComponentType::kPredictor, c.isvc.predictor, c.doc["spec"]["predictor"],
          "spec.canary[" + std::to_string(i) + "].predictor", predictor_name + "-" + c.name, c.name,
          c.traffic_percent);
      if (c.isvc.predictor.min_replicas > isvc.predictor.min_replicas) {
        return InvalidArgument("spec.canary[" + std::to_string(i) +
                               "].predictor.minReplicas: must be <= the predictor's minReplicas (" +
                               std::to_string(isvc.predictor.min_replicas) + "), got " +
                               std::to_string(c.isvc.predictor.min_replicas));
      }
    }
    if (isvc.transformer) {
      add(ComponentType::kTransformer, *isvc.transformer, spec_json["transformer"],
          "spec.transformer", owner.name + "-transformer", std::nullopt, std::nullopt);
    }
    if (isvc.explainer) {
      add(ComponentType::kExplainer, *isvc.explainer, spec_json["explainer"], "spec.explainer",
          owner.name + "-explainer", std::nullopt, std::nullopt);
    }

    for (const Part& part : parts) {
      const std::string component(spec::ComponentTypeName(part.input.type));
      const std::string& name = part.input.object_name;
      QUIVER_RETURN_IF_ERROR(CheckDnsLabelLength(name, "Service"));
      QUIVER_ASSIGN_OR_RETURN(Workload workload,
                              BuildComponentWorkload(owner, part.input, catalog_, options_));
      if (part.canary) workload.pod_labels["serving.kserve.io/canary"] = *part.canary;
      if (knative) {
        Json ksvc_labels = ObjectLabels(owner, component);
        // As KServe: behind a transformer, the predictor is reachable only inside the cluster.
        if (part.input.type == ComponentType::kPredictor && isvc.transformer) {
          ksvc_labels["networking.knative.dev/visibility"] = "cluster-local";
        }
        std::string previous;
        if (auto it = options_.previous_revisions.find(name);
            it != options_.previous_revisions.end()) {
          previous = it->second;
        } else if (Has(doc, "status")) {
          const Json& status = doc["status"];
          if (Has(status, "components") && Has(status["components"], component) &&
              Has(status["components"][component], "latestRolledoutRevision") &&
              status["components"][component]["latestRolledoutRevision"].is_string()) {
            previous =
                status["components"][component]["latestRolledoutRevision"].get<std::string>();
          }
        }
        QUIVER_ASSIGN_OR_RETURN(
            Json ksvc,
            KnativeService(owner, name, component, workload, part.scaling, part.input.path,
                           ksvc_labels, Json(), part.input.spec->canary_traffic_percent, previous));
        out.push_back(std::move(ksvc));
        continue;
      }
      Json selector = Json{{"app", "isvc." + name}};
      std::optional<int> replicas;
      std::optional<Json> autoscaler;
      if (part.canary) {
        replicas = part.scaling.min_replicas;
      } else {
        QUIVER_ASSIGN_OR_RETURN(
            StandardScaling scaling,
            RenderStandardScaling(owner, name, component, part.scaling, part.input.path, options_));
        replicas = scaling.fixed_replicas;
        autoscaler = std::move(scaling.autoscaler);
      }
      Json strategy = Has(*part.input.json, "deploymentStrategy")
                          ? (*part.input.json)["deploymentStrategy"]
                          : Json();
      Json deployment = Deployment(owner, name, component, selector, workload, replicas, strategy);
      Json service = Service(owner, name, component, selector, workload);
      if (part.canary) {
        deployment["metadata"]["labels"]["serving.kserve.io/canary"] = *part.canary;
        service["metadata"]["labels"]["serving.kserve.io/canary"] = *part.canary;
      }
      out.push_back(std::move(deployment));
      out.push_back(std::move(service));
      if (autoscaler) out.push_back(std::move(*autoscaler));
    }
    if (knative) return out;

    // One HTTPRoute: :explain to the explainer, the rest to the transformer or the predictor
    // (weighted across spec.canary[]).
    Json rules = Json::array();
    if (isvc.explainer) {
      Json explain =
          Json{{"matches",
                Json::array({Json{{"path", Json{{"type", "RegularExpression"},
                                                {"value", "^/v1/models/[\\w-]+:explain$"}}}}})},
               {"backendRefs", Json::array({BackendRef(owner.name + "-explainer", std::nullopt)})}};
      rules.push_back(std::move(explain));
    }
    Json backends = Json::array();
    std::optional<int> timeout;
    if (isvc.transformer) {
      backends.push_back(BackendRef(owner.name + "-transformer", std::nullopt));
      timeout = isvc.transformer->timeout_seconds;
    } else if (canaries.empty()) {
      backends.push_back(BackendRef(predictor_name, std::nullopt));
      timeout = isvc.predictor.timeout_seconds;
    } else {
      int canary_sum = 0;
      for (const Canary& c : canaries) canary_sum += c.traffic_percent;
      backends.push_back(BackendRef(predictor_name, 100 - canary_sum));
      for (const Canary& c : canaries) {
        backends.push_back(BackendRef(predictor_name + "-" + c.name, c.traffic_percent));
      }
      timeout = isvc.predictor.timeout_seconds;
    }
    rules.push_back(PrefixRule(backends, timeout));
    out.push_back(HttpRoute(owner, rules, options_));
    return out;
  }

  StatusOr<std::vector<Json>> RenderGraph(const Json& doc, Mode mode) {
    // The typed view's checks (root node, step targets, Splitter weights, no cycles).
    QUIVER_RETURN_IF_ERROR(spec::InferenceGraphFromJson(doc).status());
    Owner owner = MakeOwner(doc, kGraphLabel, mode);
    QUIVER_RETURN_IF_ERROR(CheckDnsLabelLength(owner.name, "Service"));
    const Json& spec_json = doc["spec"];
    std::vector<Json> out;

    // The router reads the graph from a file; serviceName steps are resolved to the URLs KServe
    // would call, so the router needs no cluster access.
    Json resolved = spec_json;
    for (auto& [node_name, node] : resolved["nodes"].items()) {
      (void)node_name;
      if (!Has(node, "steps")) continue;
      for (Json& step : node["steps"]) {
        if (!Has(step, "serviceName")) continue;
        std::string service = step["serviceName"].get<std::string>();
        step.erase("serviceName");
        step["serviceUrl"] = StepUrl(service, owner.namespace_name, services_);
      }
    }
    Json graph_doc =
        Json{{"apiVersion", doc["apiVersion"]},
             {"kind", doc["kind"]},
             {"metadata", Json{{"name", owner.name}, {"namespace", owner.namespace_name}}},
             {"spec", resolved}};
    std::string config_map = owner.name + "-graph";
    out.push_back(Json{{"apiVersion", "v1"},
                       {"kind", "ConfigMap"},
                       {"metadata", ObjectMeta(owner, config_map, "")},
                       {"data", Json{{"graph.json", graph_doc.dump(2) + "\n"}}}});

    Workload workload = BuildRouterWorkload(owner, spec_json, config_map, options_);
    // The ConfigMap's digest in the pod template rolls the router when the graph changes.
    workload.pod_annotations["quiver.dev/graph-digest"] = spec::ComponentFingerprint(graph_doc);
    Scaling scaling = ReadScaling(spec_json);
    if (mode == Mode::kKnative) {
      QUIVER_ASSIGN_OR_RETURN(Json ksvc,
                              KnativeService(owner, owner.name, "", workload, scaling, "spec",
                                             ObjectLabels(owner, ""), Json(), std::nullopt, ""));
      out.push_back(std::move(ksvc));
      return out;
    }
    Json selector = Json{{std::string(kGraphLabel), owner.name}};
    QUIVER_ASSIGN_OR_RETURN(
        StandardScaling standard,
        RenderStandardScaling(owner, owner.name, "", scaling, "spec", options_));
    out.push_back(
        Deployment(owner, owner.name, "", selector, workload, standard.fixed_replicas, Json()));
    out.push_back(Service(owner, owner.name, "", selector, workload));
    if (standard.autoscaler) out.push_back(std::move(*standard.autoscaler));
    Json backends = Json::array({BackendRef(owner.name, std::nullopt)});
    out.push_back(
        HttpRoute(owner, Json::array({PrefixRule(backends, scaling.timeout_seconds)}), options_));
    return out;
  }

 private:
  const RenderOptions& options_;
  RuntimeCatalog catalog_;
  std::map<std::string, const spec::InferenceService*> services_;
};

}  // namespace

std::string_view ModeName(Mode mode) { return mode == Mode::kKnative ? "knative" : "standard"; }

std::optional<Mode> ParseMode(std::string_view name) {
  if (name == "standard" || name == "Standard" || name == "RawDeployment") return Mode::kStandard;
  if (name == "knative" || name == "Knative" || name == "Serverless") return Mode::kKnative;
  return std::nullopt;
}

StatusOr<std::vector<Json>> RenderManifests(const std::vector<spec::Manifest>& manifests,
                                            const RenderOptions& options) {
  if (options.image.empty()) return InvalidArgument("an image is required (--image)");
  Renderer renderer(options);
  std::vector<std::string> errors;
  auto fail = [&](const spec::Manifest& m, const Status& status) {
    errors.push_back(Describe(m) + ": " + status.message());
  };

  // Pass 1: validate every document (canaries taken out first) and collect the runtimes, so a
  // runtime may come after the InferenceService that selects it.
  struct Entry {
    const spec::Manifest* manifest;
    Json doc;
    std::vector<Canary> canaries;
    std::optional<spec::InferenceService> isvc;
  };
  std::vector<Entry> entries;
  for (const spec::Manifest& m : manifests) {
    Entry entry{&m, m.doc, {}, std::nullopt};
    Json canary_list;
    if (entry.doc.is_object() && Has(entry.doc, "spec") && entry.doc["spec"].is_object() &&
        entry.doc["kind"] == "InferenceService" && Has(entry.doc["spec"], "canary")) {
      canary_list = entry.doc["spec"]["canary"];
      entry.doc["spec"].erase("canary");
    }
    Status status = spec::DefaultAndValidate(entry.doc, options.default_namespace);
    if (!status.ok()) {
      fail(m, status);
      continue;
    }
    spec::Kind kind = spec::KindOf(entry.doc);
    if (kind == spec::Kind::kServingRuntime || kind == spec::Kind::kClusterServingRuntime) {
      Status added = renderer.AddRuntime(entry.doc);
      if (!added.ok()) fail(m, added);
      continue;
    }
    if (kind == spec::Kind::kTrainedModel) {
      fail(m, InvalidArgument("kind: TrainedModel cannot be rendered: multi-model serving needs "
                              "KServe's model agent; run it on a KServe cluster with Quiver's "
                              "ClusterServingRuntimes (deploy/kserve), or serve the model with "
                              "its own InferenceService"));
      continue;
    }
    if (kind == spec::Kind::kInferenceService) {
      if (!canary_list.is_null()) {
        StatusOr<std::vector<Canary>> canaries = ParseCanaries(canary_list, entry.doc, options);
        if (!canaries.ok()) {
          fail(m, canaries.status());
          continue;
        }
        entry.canaries = std::move(*canaries);
      }
      StatusOr<spec::InferenceService> isvc = spec::InferenceServiceFromJson(entry.doc);
      if (!isvc.ok()) {
        fail(m, isvc.status());
        continue;
      }
      entry.isvc = std::move(*isvc);
    }
    entries.push_back(std::move(entry));
  }
  renderer.AddBuiltinRuntimes();
  for (const Entry& entry : entries) {
    if (entry.isvc) {
      renderer.Remember(entry.isvc->metadata.namespace_name, entry.isvc->metadata.name,
                        &*entry.isvc);
    }
  }

  // Pass 2: render in input order.
  std::vector<Json> objects;
  for (const Entry& entry : entries) {
    Status mode_error;
    std::optional<Mode> mode = ModeOf(entry.doc, options, mode_error);
    if (!mode) {
      fail(*entry.manifest, mode_error);
      continue;
    }
    StatusOr<std::vector<Json>> rendered =
        entry.isvc ? renderer.RenderService(entry.doc, entry.canaries, *mode)
                   : renderer.RenderGraph(entry.doc, *mode);
    if (!rendered.ok()) {
      fail(*entry.manifest, rendered.status());
      continue;
    }
    for (Json& object : *rendered) objects.push_back(std::move(object));
  }
  if (!errors.empty()) {
    std::string joined;
    for (const std::string& e : errors) joined += (joined.empty() ? "" : "\n") + e;
    return InvalidArgument(joined);
  }
  if (objects.empty()) {
    return InvalidArgument(
        "nothing to render: the input has no InferenceService or "
        "InferenceGraph");
  }
  return objects;
}

std::string ToYamlStream(const std::vector<Json>& objects) {
  std::string out;
  for (size_t i = 0; i < objects.size(); ++i) {
    if (i > 0) out += "---\n";
    out += spec::ToYaml(objects[i]);
  }
  return out;
}

std::string ToJsonList(const std::vector<Json>& objects) {
  Json list = Json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", Json::array()}};
  for (const Json& object : objects) list["items"].push_back(object);
  return list.dump(2) + "\n";
}

}  // namespace quiver::render
