#include "render/workload.h"

#include <algorithm>
#include <set>

namespace quiver::render {
namespace {

using spec::ComponentSpec;
using spec::ComponentType;
using spec::ContainerSpec;

constexpr std::string_view kProvisionVolume = "kserve-provision-location";
constexpr std::string_view kPvcVolume = "kserve-pvc-source";
constexpr int kQuiverHttpPort = 8080;
constexpr int kQuiverGrpcPort = 8081;

// KServe's defaults for a serving container that names no cpu/memory (the `resource` section of
// its inferenceservice ConfigMap) and for the storage initializer.
constexpr std::string_view kDefaultCpu = "1";
constexpr std::string_view kDefaultMemory = "2Gi";

// Container fields the renderer writes itself; everything else a manifest sets on a container
// (volumeMounts, securityContext, probes, lifecycle, ...) is passed through as written.
const std::set<std::string_view> kContainerModelled = {
    "name",    "image",     "command",    "args",           "workingDir",      "env",
    "ports",   "resources", "storageUri", "runtimeVersion", "protocolVersion", "modelFormat",
    "runtime", "storage"};

// Inlined pod fields the renderer writes itself (volumes and init containers are merged with
// the storage initializer's; a Deployment's pods restart Always; ephemeral containers cannot be
// in a template; deploymentStrategy belongs to the Deployment); the others pass through.
const std::set<std::string_view> kPodModelled = {"volumes", "initContainers", "restartPolicy",
                                                 "ephemeralContainers", "deploymentStrategy"};

bool Has(const Json& object, std::string_view key) {
  if (!object.is_object()) return false;
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

std::string Trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  size_t end = text.find_last_not_of(" \t");
  if (begin == std::string_view::npos) return "";
  return std::string(text.substr(begin, end - begin + 1));
}

// KServe fills a runtime's command, args and env values with Go templates over the
// InferenceService's metadata; these are the forms its runtimes use.
StatusOr<std::string> ExpandTemplates(const std::string& text, const Owner& owner,
                                      const std::string& path) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) break;
    size_t close = text.find("}}", open);
    if (close == std::string::npos) {
      return InvalidArgument(path + ": unterminated template in " + Json(text).dump());
    }
    out += text.substr(pos, open - pos);
    std::string expr = Trim(std::string_view(text).substr(open + 2, close - open - 2));
    auto lookup = [&](const std::map<std::string, std::string>& map,
                      const std::string& key) -> std::string {
      auto it = map.find(key);
      return it == map.end() ? "" : it->second;
    };
    auto quoted_key = [](std::string_view rest) -> std::optional<std::string> {
      std::string key = Trim(rest);
      if (key.size() < 2 || key.front() != '"' || key.back() != '"') return std::nullopt;
      return key.substr(1, key.size() - 2);
    };
    if (expr == ".Name") {
      out += owner.name;
    } else if (expr == ".Namespace") {
      out += owner.namespace_name;
    } else if (expr.rfind(".Labels.", 0) == 0) {
      out += lookup(owner.labels, expr.substr(8));
    } else if (expr.rfind(".Annotations.", 0) == 0) {
      out += lookup(owner.annotations, expr.substr(13));
    } else if (expr.rfind("index .Labels ", 0) == 0 && quoted_key(expr.substr(14))) {
      out += lookup(owner.labels, *quoted_key(expr.substr(14)));
    } else if (expr.rfind("index .Annotations ", 0) == 0 && quoted_key(expr.substr(19))) {
      out += lookup(owner.annotations, *quoted_key(expr.substr(19)));
    } else {
      return InvalidArgument(path + ": unsupported template {{" + expr +
                             "}}; expected {{.Name}}, {{.Namespace}}, {{.Labels.KEY}}, "
                             "{{.Annotations.KEY}} or {{index .Labels \"KEY\"}}");
    }
    pos = close + 2;
  }
  out += text.substr(pos);
  return out;
}

bool HasFlag(const std::vector<std::string>& args, std::string_view flag) {
  std::string alt(flag);
  std::replace(alt.begin(), alt.end(), '_', '-');
  for (const std::string& arg : args) {
    for (const std::string& f : {std::string(flag), alt}) {
      if (arg == f || arg.rfind(f + "=", 0) == 0) return true;
    }
  }
  return false;
}

void AddFlag(std::vector<std::string>& args, std::string_view flag, const std::string& value) {
  if (!HasFlag(args, flag)) args.push_back(std::string(flag) + "=" + value);
}

Json ResourcesJson(const spec::ResourceRequirements& resources, bool serving_defaults) {
  std::map<std::string, std::string> requests = resources.requests;
  std::map<std::string, std::string> limits = resources.limits;
  if (serving_defaults) {
    // Only a resource named nowhere gets KServe's default: a lone limit already makes
    // Kubernetes request the same amount, and a lone request means "no limit".
    for (auto [name, value] :
         {std::pair<std::string, std::string_view>{"cpu", kDefaultCpu},
          std::pair<std::string, std::string_view>{"memory", kDefaultMemory}}) {
      if (!requests.count(name) && !limits.count(name)) {
        requests[name] = value;
        limits[name] = value;
      }
    }
  }
  Json out = Json::object();
  if (!requests.empty()) out["requests"] = requests;
  if (!limits.empty()) out["limits"] = limits;
  return out;
}

Json EnvJson(const std::vector<spec::EnvVar>& env) {
  Json out = Json::array();
  for (const spec::EnvVar& var : env) out.push_back(Json{{"name", var.name}, {"value", var.value}});
  return out;
}

Json HttpProbe(const std::string& path, int port, int period, int failures) {
  Json get = Json{{"path", path}, {"port", port}};
  return Json{{"httpGet", get}, {"periodSeconds", period}, {"failureThreshold", failures}};
}

Json RestrictedSecurityContext() {
  return Json{{"allowPrivilegeEscalation", false},
              {"runAsNonRoot", true},
              {"capabilities", Json{{"drop", Json::array({"ALL"})}}}};
}

// Copies the keys of `from` that the renderer does not write itself into `to` (later calls win).
void PassThrough(const Json& from, const std::set<std::string_view>& skip, Json& to) {
  if (!from.is_object()) return;
  for (const auto& [key, value] : from.items()) {
    if (skip.count(key) || value.is_null()) continue;
    to[key] = value;
  }
}

void AppendArray(const Json& from, std::string_view key, Json& to) {
  if (!Has(from, key) || !from[std::string(key)].is_array()) return;
  for (const Json& item : from[std::string(key)]) to.push_back(item);
}

struct StoragePlan {
  std::optional<Json> init_container;
  std::vector<Json> volumes;
  std::optional<Json> mount;  // on the serving container
};

StatusOr<StoragePlan> PlanStorage(const std::string& uri, const std::string& path,
                                  const RenderOptions& options) {
  StoragePlan plan;
  if (uri.empty()) return plan;
  size_t scheme_end = uri.find("://");
  std::string scheme = scheme_end == std::string::npos ? "" : uri.substr(0, scheme_end);
  if (scheme.empty() || scheme == "file") {
    return InvalidArgument(path + ": " + Json(uri).dump() +
                           " is a path on this machine, which a cluster's pods cannot read; use "
                           "s3://, http(s):// or pvc:// (a PersistentVolumeClaim)");
  }
  if (scheme == "pvc") {
    // As KServe: the claim is mounted read-only where the model is expected, at its sub-path.
    std::string rest = uri.substr(scheme_end + 3);
    size_t slash = rest.find('/');
    std::string claim = rest.substr(0, slash);
    std::string sub_path = slash == std::string::npos ? "" : rest.substr(slash + 1);
    while (!sub_path.empty() && sub_path.back() == '/') sub_path.pop_back();
    plan.volumes.push_back(
        Json{{"name", kPvcVolume},
             {"persistentVolumeClaim", Json{{"claimName", claim}, {"readOnly", true}}}});
    Json mount = Json{{"name", kPvcVolume}, {"mountPath", kModelDir}, {"readOnly", true}};
    if (!sub_path.empty()) mount["subPath"] = sub_path;
    plan.mount = std::move(mount);
    return plan;
  }
  Json init = Json::object();
  init["name"] = "storage-initializer";
  init["image"] = options.image;
  init["command"] = Json::array({"quiver", "storage-initializer"});
  if (scheme == "gs") {
    // Quiver's storage initializer speaks S3; Cloud Storage answers the same protocol on its
    // XML API endpoint (HMAC keys in the storage secret for private buckets).
    init["args"] = Json::array({"s3://" + uri.substr(scheme_end + 3), kModelDir});
    init["env"] = Json::array(
        {Json{{"name", "AWS_ENDPOINT_URL"}, {"value", "https://storage.googleapis.com"}}});
  } else {
    init["args"] = Json::array({uri, kModelDir});
  }
  if (!options.storage_secret.empty()) {
    init["envFrom"] = Json::array({Json{{"secretRef", Json{{"name", options.storage_secret}}}}});
  }
  init["resources"] = Json{{"requests", Json{{"cpu", "100m"}, {"memory", "100Mi"}}},
                           {"limits", Json{{"cpu", "1"}, {"memory", "1Gi"}}}};
  init["volumeMounts"] = Json::array({Json{{"name", kProvisionVolume}, {"mountPath", kModelDir}}});
  init["securityContext"] = RestrictedSecurityContext();
  plan.init_container = std::move(init);
  plan.volumes.push_back(Json{{"name", kProvisionVolume}, {"emptyDir", Json::object()}});
  plan.mount = Json{{"name", kProvisionVolume}, {"mountPath", kModelDir}, {"readOnly", true}};
  return plan;
}

std::string ComponentName(ComponentType type) { return std::string(spec::ComponentTypeName(type)); }

// KServe's runtimes have names like kserve-sklearnserver. A manifest written for KServe that
// names one still renders: Quiver selects its own runtime for the model format instead.
bool IsKServeRuntimeName(const std::string& name) { return name.rfind("kserve-", 0) == 0; }

bool RuntimeExists(const RuntimeCatalog& catalog, const std::string& ns, const std::string& name) {
  return catalog.docs.count(ns + "/" + name) || catalog.docs.count("/" + name);
}

}  // namespace

Json ObjectLabels(const Owner& owner, const std::string& component) {
  Json labels = Json::object();
  labels[std::string(kManagedByLabel)] = "quiver";
  labels[owner.owner_label] = owner.name;
  if (!component.empty()) labels["component"] = component;
  for (const auto& [key, value] : owner.labels) {
    if (!labels.contains(key)) labels[key] = value;
  }
  return labels;
}

Json ObjectMeta(const Owner& owner, const std::string& name, const std::string& component) {
  return Json{{"name", name},
              {"namespace", owner.namespace_name},
              {"labels", ObjectLabels(owner, component)}};
}

StatusOr<Workload> BuildComponentWorkload(const Owner& owner, const ComponentInput& input,
                                          const RuntimeCatalog& runtimes,
                                          const RenderOptions& options) {
  const ComponentSpec& comp = *input.spec;
  const Json& json = *input.json;
  const bool knative = owner.mode == Mode::kKnative;
  Workload out;

  // 1. The serving container: the selected runtime's merged with the component's fields, or
  // the component's own containers[0].
  ContainerSpec container;
  Json extra = Json::object();  // pass-through container fields
  const Json* runtime_spec = nullptr;
  std::map<std::string, std::string> runtime_annotations;
  bool from_runtime = comp.kind == ComponentSpec::Kind::kModel;
  std::string storage_path = input.path;
  if (from_runtime) {
    ComponentSpec selector = comp;
    if (!selector.runtime.empty() &&
        !RuntimeExists(runtimes, owner.namespace_name, selector.runtime) &&
        IsKServeRuntimeName(selector.runtime)) {
      selector.runtime.clear();
    }
    static const std::vector<spec::ServingRuntime> kNone;
    auto ns_it = runtimes.by_namespace.find(owner.namespace_name);
    StatusOr<const spec::ServingRuntime*> runtime = spec::SelectRuntime(
        selector, ns_it == runtimes.by_namespace.end() ? kNone : ns_it->second, runtimes.cluster);
    if (!runtime.ok()) {
      return InvalidArgument(input.path + ".model: " + runtime.status().message());
    }
    const spec::ServingRuntime& rt = **runtime;
    std::string key =
        (rt.cluster_scoped ? "" : rt.metadata.namespace_name) + "/" + rt.metadata.name;
    auto doc_it = runtimes.docs.find(key);
    if (doc_it != runtimes.docs.end()) {
      runtime_spec = &doc_it->second["spec"];
      const Json& containers = (*runtime_spec)["containers"];
      if (containers.is_array() && !containers.empty()) {
        PassThrough(containers[0], kContainerModelled, extra);
      }
    }
    runtime_annotations = rt.annotations;
    container = spec::MergeContainers(rt.containers.at(0), comp);
    if (Has(json, "model")) PassThrough(json["model"], kContainerModelled, extra);
    storage_path += ".model.storageUri";
  } else {
    if (comp.containers.empty()) return InvalidArgument(input.path + ".containers: required");
    container = comp.containers.front();
    PassThrough(json["containers"][0], kContainerModelled, extra);
    storage_path += ".containers[0].env[STORAGE_URI]";
  }
  if (container.name.empty()) container.name = "kserve-container";
  out.quiver = !container.command.empty() && container.command.front() == "quiver";
  if (container.image == "quiver" || (container.image.empty() && out.quiver)) {
    container.image = options.image;
  }
  if (container.image.empty()) {
    return InvalidArgument(input.path + ": the container has no image");
  }
  if (from_runtime) {
    // Templates live in runtimes; KServe expands them with the InferenceService's metadata.
    for (auto* list : {&container.command, &container.args}) {
      for (std::string& item : *list) {
        QUIVER_ASSIGN_OR_RETURN(item, ExpandTemplates(item, owner, input.path));
      }
    }
    for (spec::EnvVar& var : container.env) {
      QUIVER_ASSIGN_OR_RETURN(var.value, ExpandTemplates(var.value, owner, input.path));
    }
  }
  if (input.type != ComponentType::kPredictor) {
    // KServe's webhook tells a transformer or explainer its model and where the predictor is.
    AddFlag(container.args, "--model_name", owner.name);
    AddFlag(container.args, "--predictor_host", input.predictor_host);
    AddFlag(container.args, "--http_port", std::to_string(kQuiverHttpPort));
    if (!HasFlag(container.args, "--predictor_protocol")) {
      AddFlag(container.args, "--protocol",
              input.predictor_protocol == spec::Protocol::kV1 ? "v1" : "v2");
    }
  }
  if (out.quiver) {
    // Only the model it was started for, as `quiver up`'s replicas; batching and payload logging
    // run inside `quiver serve` (KServe's agent sidecar is not needed).
    AddFlag(container.args, "--builtin-models", "none");
    if (comp.batcher) {
      AddFlag(container.args, "--max_batch_size", std::to_string(comp.batcher->max_batch_size));
      AddFlag(container.args, "--max_latency", std::to_string(comp.batcher->max_latency_ms));
    }
    if (comp.logger) {
      AddFlag(container.args, "--log-url", comp.logger->url);
      AddFlag(container.args, "--log-mode", std::string(spec::LoggerModeName(comp.logger->mode)));
      AddFlag(container.args, "--log-service-name", owner.name);
      AddFlag(container.args, "--log-namespace", owner.namespace_name);
      AddFlag(container.args, "--log-component", ComponentName(input.type));
    }
  }

  // 2. Ports: Quiver serves HTTP on 8080 and gRPC on 8081. A Knative revision exposes one port:
  // h2c for a grpc-v2 predictor, http1 otherwise.
  Json ports = Json::array();
  bool grpc = comp.protocol_version == spec::Protocol::kGrpcV2 ||
              comp.protocol_version == spec::Protocol::kGrpcV1;
  if (!container.ports.empty()) {
    if (knative && container.ports.size() > 1) {
      return InvalidArgument(input.path +
                             ".ports: a Knative Service exposes one container port, got " +
                             std::to_string(container.ports.size()));
    }
    for (const spec::ContainerPort& port : container.ports) {
      Json p = Json::object();
      if (!port.name.empty()) p["name"] = port.name;
      p["containerPort"] = port.container_port;
      p["protocol"] = port.protocol;
      ports.push_back(std::move(p));
    }
    out.http_port = container.ports.front().container_port;
  } else if (out.quiver) {
    if (knative) {
      out.http_port = grpc ? kQuiverGrpcPort : kQuiverHttpPort;
      ports.push_back(Json{
          {"name", grpc ? "h2c" : "http1"}, {"containerPort", out.http_port}, {"protocol", "TCP"}});
    } else {
      ports.push_back(
          Json{{"name", "http"}, {"containerPort", kQuiverHttpPort}, {"protocol", "TCP"}});
      ports.push_back(
          Json{{"name", "grpc"}, {"containerPort", kQuiverGrpcPort}, {"protocol", "TCP"}});
      out.grpc_port = kQuiverGrpcPort;
    }
  } else if (!knative) {
    ports.push_back(Json{{"containerPort", kQuiverHttpPort}, {"protocol", "TCP"}});
  }

  // 3. Storage.
  QUIVER_ASSIGN_OR_RETURN(StoragePlan storage,
                          PlanStorage(comp.storage_uri, storage_path, options));

  // 4. The container object, keys in a fixed order.
  Json c = Json::object();
  c["name"] = container.name;
  c["image"] = container.image;
  if (!container.command.empty()) c["command"] = container.command;
  if (!container.args.empty()) c["args"] = container.args;
  if (!container.working_dir.empty()) c["workingDir"] = container.working_dir;
  if (!container.env.empty()) c["env"] = EnvJson(container.env);
  if (!ports.empty()) c["ports"] = ports;
  c["resources"] = ResourcesJson(container.resources, /*serving_defaults=*/true);
  Json mounts = Json::array();
  if (storage.mount) mounts.push_back(*storage.mount);
  AppendArray(extra, "volumeMounts", mounts);
  extra.erase("volumeMounts");
  if (!mounts.empty()) c["volumeMounts"] = mounts;
  if (out.quiver && !(knative && grpc)) {
    // OIP health: ready once the model is loaded, live while the process answers (it does while
    // loading). The start-up probe gives a large model 10 minutes to download and load before
    // liveness counts; Knative gates a revision on readiness itself.
    // Knative accepts a probe on the serving port (the published schema requires the port).
    int port = out.http_port;
    c["readinessProbe"] = HttpProbe("/v2/health/ready", port, 5, 3);
    c["livenessProbe"] = HttpProbe("/v2/health/live", port, 10, 3);
    if (!knative) c["startupProbe"] = HttpProbe("/v2/health/live", port, 5, 120);
  } else if (!out.quiver && !knative) {
    c["readinessProbe"] = Json{{"tcpSocket", Json{{"port", out.http_port}}}, {"periodSeconds", 5}};
  }
  if (out.quiver) c["securityContext"] = RestrictedSecurityContext();
  for (const auto& [key, value] : extra.items()) c[key] = value;  // the manifest's own win

  // 5. The pod.
  Json pod = Json::object();
  Json init = Json::array();
  if (storage.init_container) init.push_back(*storage.init_container);
  if (runtime_spec != nullptr) AppendArray(*runtime_spec, "initContainers", init);
  AppendArray(json, "initContainers", init);
  if (!init.empty()) pod["initContainers"] = init;
  Json containers = Json::array({c});
  if (!from_runtime && json["containers"].size() > 1) {
    for (size_t i = 1; i < json["containers"].size(); ++i)
      containers.push_back(json["containers"][i]);
  }
  pod["containers"] = containers;
  Json volumes = Json::array();
  for (const Json& v : storage.volumes) volumes.push_back(v);
  if (runtime_spec != nullptr) AppendArray(*runtime_spec, "volumes", volumes);
  AppendArray(json, "volumes", volumes);
  if (!volumes.empty()) pod["volumes"] = volumes;
  for (std::string_view key : spec::InlinedPodFields()) {
    if (kPodModelled.count(key) > 0) continue;
    const Json* value = nullptr;
    if (runtime_spec != nullptr && Has(*runtime_spec, key))
      value = &(*runtime_spec)[std::string(key)];
    if (Has(json, key)) value = &json[std::string(key)];
    if (value != nullptr) pod[std::string(key)] = *value;
  }
  out.pod_spec = std::move(pod);

  // 6. Pod labels and annotations: the runtime's, then the component's. Quiver's /metrics is
  // announced the way Prometheus' kubernetes-pods job and KServe's aggregation read it.
  out.pod_labels = Json::object();
  out.pod_annotations = Json::object();
  if (runtime_spec != nullptr && Has(*runtime_spec, "labels")) {
    for (const auto& [k, v] : (*runtime_spec)["labels"].items()) out.pod_labels[k] = v;
  }
  for (const auto& [k, v] : comp.labels) out.pod_labels[k] = v;
  if (out.quiver || runtime_annotations.count("prometheus.kserve.io/port")) {
    auto get = [&](const std::string& key, const std::string& fallback) {
      auto it = runtime_annotations.find(key);
      return it == runtime_annotations.end() ? fallback : it->second;
    };
    out.pod_annotations["prometheus.io/scrape"] = "true";
    out.pod_annotations["prometheus.io/port"] =
        get("prometheus.kserve.io/port", std::to_string(kQuiverHttpPort));
    out.pod_annotations["prometheus.io/path"] = get("prometheus.kserve.io/path", "/metrics");
  }
  for (const auto& [k, v] : runtime_annotations) out.pod_annotations[k] = v;
  for (const auto& [k, v] : comp.annotations) out.pod_annotations[k] = v;
  return out;
}

Workload BuildRouterWorkload(const Owner& owner, const Json& graph_spec,
                             const std::string& graph_config_map, const RenderOptions& options) {
  Workload out;
  out.quiver = true;
  out.http_port = kQuiverHttpPort;
  const bool knative = owner.mode == Mode::kKnative;
  Json c = Json::object();
  c["name"] = "router";
  c["image"] = options.image;
  c["command"] = Json::array({"quiver", "router"});
  c["args"] = Json::array({"--graph=/etc/quiver/graph/graph.json"});
  c["ports"] = Json::array({Json{{"name", knative ? "http1" : "http"},
                                 {"containerPort", kQuiverHttpPort},
                                 {"protocol", "TCP"}}});
  // KServe's router defaults when the graph names no resources.
  if (Has(graph_spec, "resources")) {
    c["resources"] = graph_spec["resources"];
  } else {
    c["resources"] = Json{{"requests", Json{{"cpu", "100m"}, {"memory", "256Mi"}}},
                          {"limits", Json{{"cpu", "1"}, {"memory", "1Gi"}}}};
  }
  c["volumeMounts"] = Json::array(
      {Json{{"name", "graph"}, {"mountPath", "/etc/quiver/graph"}, {"readOnly", true}}});
  c["readinessProbe"] = HttpProbe("/v2/health/ready", kQuiverHttpPort, 5, 3);
  c["livenessProbe"] = HttpProbe("/v2/health/live", kQuiverHttpPort, 10, 3);
  c["securityContext"] = RestrictedSecurityContext();
  Json pod = Json::object();
  pod["containers"] = Json::array({c});
  pod["volumes"] =
      Json::array({Json{{"name", "graph"}, {"configMap", Json{{"name", graph_config_map}}}}});
  for (std::string_view key :
       {"nodeSelector", "tolerations", "affinity", "nodeName", "serviceAccountName"}) {
    if (Has(graph_spec, key)) pod[std::string(key)] = graph_spec[std::string(key)];
  }
  out.pod_spec = std::move(pod);
  out.pod_labels = Json::object();
  out.pod_annotations = Json{{"prometheus.io/scrape", "true"},
                             {"prometheus.io/port", std::to_string(kQuiverHttpPort)},
                             {"prometheus.io/path", "/metrics"}};
  return out;
}

Scaling ReadScaling(const Json& component) {
  Scaling s;
  auto int_of = [&](std::string_view key) -> std::optional<int> {
    if (!Has(component, key) || !component[std::string(key)].is_number_integer())
      return std::nullopt;
    return component[std::string(key)].get<int>();
  };
  auto string_of = [&](std::string_view key) -> std::optional<std::string> {
    if (!Has(component, key) || !component[std::string(key)].is_string()) return std::nullopt;
    return component[std::string(key)].get<std::string>();
  };
  s.min_replicas = int_of("minReplicas").value_or(1);
  if (auto max = int_of("maxReplicas"); max && *max > 0) s.max_replicas = max;
  s.scale_target = int_of("scaleTarget");
  s.scale_metric = string_of("scaleMetric");
  s.scale_metric_type = string_of("scaleMetricType");
  s.container_concurrency = int_of("containerConcurrency").value_or(0);
  s.timeout_seconds = int_of("timeout");
  return s;
}

StatusOr<StandardScaling> RenderStandardScaling(const Owner& owner, const std::string& target,
                                                const std::string& component,
                                                const Scaling& scaling, const std::string& path,
                                                const RenderOptions& options) {
  StandardScaling out;
  std::string klass = "hpa";
  bool explicit_class = false;
  if (auto it = owner.annotations.find("serving.kserve.io/autoscalerClass");
      it != owner.annotations.end()) {
    klass = it->second;
    explicit_class = true;
    if (klass != "hpa" && klass != "keda" && klass != "none" && klass != "external") {
      return InvalidArgument(
          "metadata.annotations[serving.kserve.io/autoscalerClass]: must be "
          "one of hpa, keda, none, external, got " +
          Json(klass).dump());
    }
  }
  std::string metric = scaling.scale_metric.value_or("cpu");
  bool request_metric = metric == "concurrency" || metric == "rps";
  if (request_metric && !explicit_class) klass = "keda";
  if (request_metric && klass == "hpa") {
    return InvalidArgument(path + ".scaleMetric: " + metric +
                           " needs KEDA (a HorizontalPodAutoscaler scales on cpu or memory); "
                           "remove the serving.kserve.io/autoscalerClass: hpa annotation or use "
                           "scaleMetric cpu");
  }
  if (klass == "none" || klass == "external") {
    out.fixed_replicas = scaling.min_replicas;
    return out;
  }
  std::string type =
      scaling.scale_metric_type.value_or(request_metric ? "AverageValue" : "Utilization");
  if (!request_metric && type == "Value") {
    return InvalidArgument(path + ".scaleMetricType: Value is not available for " + metric +
                           "; expected Utilization or AverageValue");
  }
  if (metric == "memory" && !scaling.scale_target) {
    return InvalidArgument(path +
                           ".scaleTarget: required with scaleMetric memory (KServe has "
                           "no default memory target)");
  }
  Json meta = ObjectMeta(owner, target, component);
  Json target_ref = Json{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", target}};
  if (klass == "hpa") {
    // KServe's createHPA: at least one replica (an HPA cannot scale to zero), 80% CPU default.
    int min = std::max(1, scaling.min_replicas);
    int max = std::max(scaling.max_replicas.value_or(0), min);
    Json metric_target = Json::object();
    metric_target["type"] = type;
    if (type == "Utilization") {
      metric_target["averageUtilization"] = scaling.scale_target.value_or(80);
    } else {
      int value = scaling.scale_target.value_or(1);
      metric_target["averageValue"] =
          metric == "memory" ? std::to_string(value) + "Mi" : std::to_string(value);
    }
    Json hpa = Json::object();
    hpa["apiVersion"] = "autoscaling/v2";
    hpa["kind"] = "HorizontalPodAutoscaler";
    hpa["metadata"] = meta;
    hpa["spec"] = Json{
        {"scaleTargetRef", target_ref},
        {"minReplicas", min},
        {"maxReplicas", max},
        {"metrics",
         Json::array({Json{{"type", "Resource"},
                           {"resource", Json{{"name", metric}, {"target", metric_target}}}}})}};
    out.autoscaler = std::move(hpa);
    return out;
  }
  // KEDA: scales to zero when minReplicas is 0 (KServe's createKedaScaledObject defaults).
  int min = scaling.min_replicas;
  int max = std::max(scaling.max_replicas.value_or(0), std::max(min, 1));
  Json trigger = Json::object();
  if (request_metric) {
    // Quiver's own metrics: requests per second, or in-flight requests by Little's law (the
    // busy time added per second). Defaults are Knative's: 70% of 100 concurrent requests, or
    // of 200 requests per second, or of containerConcurrency when set.
    std::string selector =
        "namespace=\"" + owner.namespace_name + "\",pod=~\"" + target + "-[a-z0-9]+-[a-z0-9]+\"";
    std::string query;
    double threshold;
    if (metric == "rps") {
      query =
          "sum(rate({__name__=~\"nv_inference_request_(success|failure)\"," + selector + "}[1m]))";
      threshold = scaling.scale_target ? *scaling.scale_target : 200 * 0.7;
    } else {
      query = "sum(rate(nv_inference_request_duration_us{" + selector + "}[1m])) / 1e6";
      int total = scaling.container_concurrency > 0 ? scaling.container_concurrency : 100;
      threshold = scaling.scale_target ? *scaling.scale_target : total * 0.7;
    }
    char text[32];
    std::snprintf(text, sizeof(text), "%g", threshold);
    trigger["type"] = "prometheus";
    trigger["metadata"] = Json{{"serverAddress", options.prometheus_url},
                               {"query", query},
                               {"threshold", std::string(text)}};
  } else {
    trigger["type"] = metric;
    trigger["metricType"] = type;
    trigger["metadata"] = Json{
        {"value", std::to_string(scaling.scale_target.value_or(type == "Utilization" ? 80 : 1))}};
  }
  Json so = Json::object();
  so["apiVersion"] = "keda.sh/v1alpha1";
  so["kind"] = "ScaledObject";
  so["metadata"] = meta;
  so["spec"] = Json{
      {"scaleTargetRef", target_ref},
      {"minReplicaCount", min},
      {"maxReplicaCount", max},
      {"advanced",
       Json{{"horizontalPodAutoscalerConfig",
             Json{{"behavior", Json{{"scaleUp", Json{{"stabilizationWindowSeconds", 0}}},
                                    {"scaleDown", Json{{"stabilizationWindowSeconds", 300}}}}}}}}},
      {"triggers", Json::array({trigger})}};
  out.autoscaler = std::move(so);
  return out;
}

Status AddKnativeScaling(const Owner& owner, const Scaling& scaling, const std::string& path,
                         Json& annotations) {
  std::string metric = scaling.scale_metric.value_or("concurrency");
  // Knative's KPA scales on requests; cpu and memory need its HPA class (and its extension).
  bool resource_metric = metric == "cpu" || metric == "memory";
  std::string klass =
      resource_metric ? "hpa.autoscaling.knative.dev" : "kpa.autoscaling.knative.dev";
  if (auto it = owner.annotations.find("autoscaling.knative.dev/class");
      it != owner.annotations.end()) {
    klass = it->second;
  }
  if (resource_metric && klass == "kpa.autoscaling.knative.dev") {
    return InvalidArgument(path + ".scaleMetric: " + metric +
                           " needs Knative's HPA class; KPA scales on concurrency or rps");
  }
  annotations["autoscaling.knative.dev/class"] = klass;
  annotations["autoscaling.knative.dev/min-scale"] = std::to_string(scaling.min_replicas);
  if (scaling.max_replicas) {
    annotations["autoscaling.knative.dev/max-scale"] = std::to_string(*scaling.max_replicas);
  }
  if (scaling.scale_metric) annotations["autoscaling.knative.dev/metric"] = metric;
  if (scaling.scale_target) {
    annotations["autoscaling.knative.dev/target"] = std::to_string(*scaling.scale_target);
  }
  // The user's own Knative annotations on the InferenceService win, as KServe passes them on.
  for (const auto& [key, value] : owner.annotations) {
    if (key.rfind("autoscaling.knative.dev/", 0) == 0) annotations[key] = value;
  }
  return Status::Ok();
}

}  // namespace quiver::render
