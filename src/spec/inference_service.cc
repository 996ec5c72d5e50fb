#include "spec/inference_service.h"

#include <algorithm>
#include <cstdio>

#include "spec/quantity.h"
#include "spec/validators.h"

namespace quiver::spec {

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kV1:
      return "v1";
    case Protocol::kV2:
      return "v2";
    case Protocol::kGrpcV1:
      return "grpc-v1";
    case Protocol::kGrpcV2:
      return "grpc-v2";
  }
  return "v1";
}

std::optional<Protocol> ParseProtocol(std::string_view name) {
  if (name == "v1") return Protocol::kV1;
  if (name == "v2") return Protocol::kV2;
  if (name == "grpc-v1") return Protocol::kGrpcV1;
  if (name == "grpc-v2") return Protocol::kGrpcV2;
  return std::nullopt;
}

std::string_view ScaleMetricName(ScaleMetric metric) {
  switch (metric) {
    case ScaleMetric::kConcurrency:
      return "concurrency";
    case ScaleMetric::kRps:
      return "rps";
    case ScaleMetric::kCpu:
      return "cpu";
    case ScaleMetric::kMemory:
      return "memory";
  }
  return "concurrency";
}

std::string_view LoggerModeName(LoggerMode mode) {
  switch (mode) {
    case LoggerMode::kAll:
      return "all";
    case LoggerMode::kRequest:
      return "request";
    case LoggerMode::kResponse:
      return "response";
  }
  return "all";
}

std::string_view ComponentTypeName(ComponentType type) {
  switch (type) {
    case ComponentType::kPredictor:
      return "predictor";
    case ComponentType::kTransformer:
      return "transformer";
    case ComponentType::kExplainer:
      return "explainer";
  }
  return "predictor";
}

namespace {

// The framework keys KServe accepted before predictor.model; each names its model format.
constexpr std::string_view kFrameworkKeys[] = {"sklearn",  "xgboost", "tensorflow",  "pytorch",
                                               "triton",   "onnx",    "huggingface", "pmml",
                                               "lightgbm", "paddle"};

// Kubernetes container fields that make no sense for a local process (probes are replaced by
// Quiver's own readiness checks, images and mounts by local paths). Accepted so that manifests
// written for a cluster apply unchanged; ignored locally.
const std::vector<std::string_view> kContainerModelled = {
    "name", "image", "command", "args", "workingDir", "ports", "env", "resources"};
const std::vector<std::string_view> kContainerIgnored = {"volumeMounts",
                                                         "volumeDevices",
                                                         "livenessProbe",
                                                         "readinessProbe",
                                                         "startupProbe",
                                                         "lifecycle",
                                                         "terminationMessagePath",
                                                         "terminationMessagePolicy",
                                                         "imagePullPolicy",
                                                         "securityContext",
                                                         "stdin",
                                                         "stdinOnce",
                                                         "tty",
                                                         "resizePolicy",
                                                         "restartPolicy"};

// Pod fields inlined in every component: scheduling and cluster identity, accepted and ignored.
const std::vector<std::string_view> kPodIgnored = {"volumes",
                                                   "initContainers",
                                                   "nodeSelector",
                                                   "tolerations",
                                                   "affinity",
                                                   "serviceAccountName",
                                                   "serviceAccount",
                                                   "imagePullSecrets",
                                                   "securityContext",
                                                   "hostNetwork",
                                                   "hostIPC",
                                                   "hostPID",
                                                   "dnsPolicy",
                                                   "dnsConfig",
                                                   "priorityClassName",
                                                   "priority",
                                                   "schedulerName",
                                                   "runtimeClassName",
                                                   "restartPolicy",
                                                   "terminationGracePeriodSeconds",
                                                   "activeDeadlineSeconds",
                                                   "nodeName",
                                                   "hostname",
                                                   "subdomain",
                                                   "hostAliases",
                                                   "automountServiceAccountToken",
                                                   "enableServiceLinks",
                                                   "shareProcessNamespace",
                                                   "topologySpreadConstraints",
                                                   "readinessGates",
                                                   "preemptionPolicy",
                                                   "overhead",
                                                   "setHostnameAsFQDN",
                                                   "os",
                                                   "hostUsers",
                                                   "schedulingGates",
                                                   "resourceClaims",
                                                   "ephemeralContainers",
                                                   "deploymentStrategy"};

const std::vector<std::string_view> kExtensionModelled = {"minReplicas",     "maxReplicas",
                                                          "scaleTarget",     "scaleMetric",
                                                          "scaleMetricType", "containerConcurrency",
                                                          "timeout",         "canaryTrafficPercent",
                                                          "logger",          "batcher",
                                                          "labels",          "annotations",
                                                          "containers"};

std::vector<std::string_view> Concat(std::initializer_list<std::vector<std::string_view>> lists) {
  std::vector<std::string_view> all;
  for (const auto& list : lists) all.insert(all.end(), list.begin(), list.end());
  return all;
}

// Fields KServe defines that Quiver cannot honour: an error that says why, never silence.
void RejectUnsupported(const Json& object, std::string_view path, std::string_view key,
                       std::string_view reason, FieldErrors& errors) {
  auto it = object.find(key);
  if (it != object.end() && !it->is_null()) errors.Add(FieldPath(path, key), reason);
}

std::vector<EnvVar> ParseEnv(const Json& object, std::string_view path, FieldErrors& errors) {
  std::vector<EnvVar> env;
  const Json* list = ReadArray(object, "env", path, errors);
  if (list == nullptr) return env;
  std::string list_path = FieldPath(path, "env");
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& item = (*list)[i];
    std::string item_path = IndexPath(list_path, i);
    if (!item.is_object()) {
      errors.Add(item_path, "must be an object with name and value, got " + Describe(item));
      continue;
    }
    CheckKnownFields(item, item_path, {"name", "value", "valueFrom"}, {}, errors);
    RejectUnsupported(item, item_path, "valueFrom",
                      "not supported: Quiver has no Secrets or ConfigMaps to read from; "
                      "write the value under value",
                      errors);
    EnvVar var;
    std::optional<std::string> name = ReadString(item, "name", item_path, errors);
    if (!name || name->empty()) {
      if (!item.contains("name") || item["name"].is_null()) {
        errors.Add(FieldPath(item_path, "name"), "required");
      } else if (name) {
        errors.Add(FieldPath(item_path, "name"), "must not be empty");
      }
    } else {
      var.name = *name;
    }
    var.value = ReadString(item, "value", item_path, errors).value_or("");
    env.push_back(std::move(var));
  }
  return env;
}

std::map<std::string, std::string> ParseQuantityMap(const Json& object, std::string_view key,
                                                    std::string_view path, FieldErrors& errors) {
  std::map<std::string, std::string> result;
  const Json* map = ReadObject(object, key, path, errors);
  if (map == nullptr) return result;
  std::string map_path = FieldPath(path, key);
  for (const auto& [name, value] : map->items()) {
    StatusOr<std::string> text = QuantityText(value);
    if (!text.ok()) {
      errors.Add(FieldPath(map_path, name),
                 text.status().message() + (value.is_string() ? "" : ", got " + Describe(value)));
      continue;
    }
    result.emplace(name, *text);
  }
  return result;
}

ResourceRequirements ParseResources(const Json& object, std::string_view path,
                                    FieldErrors& errors) {
  ResourceRequirements resources;
  const Json* json = ReadObject(object, "resources", path, errors);
  if (json == nullptr) return resources;
  std::string resources_path = FieldPath(path, "resources");
  CheckKnownFields(*json, resources_path, {"requests", "limits"}, {"claims"}, errors);
  resources.requests = ParseQuantityMap(*json, "requests", resources_path, errors);
  resources.limits = ParseQuantityMap(*json, "limits", resources_path, errors);
  return resources;
}

std::vector<ContainerPort> ParsePorts(const Json& object, std::string_view path,
                                      FieldErrors& errors) {
  std::vector<ContainerPort> ports;
  const Json* list = ReadArray(object, "ports", path, errors);
  if (list == nullptr) return ports;
  std::string list_path = FieldPath(path, "ports");
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& item = (*list)[i];
    std::string item_path = IndexPath(list_path, i);
    if (!item.is_object()) {
      errors.Add(item_path, "must be an object with containerPort, got " + Describe(item));
      continue;
    }
    CheckKnownFields(item, item_path, {"containerPort", "name", "protocol"}, {"hostPort", "hostIP"},
                     errors);
    ContainerPort port;
    std::optional<int64_t> number = ReadInt(item, "containerPort", item_path, errors);
    if (!number) {
      if (!item.contains("containerPort")) {
        errors.Add(FieldPath(item_path, "containerPort"), "required");
      }
    } else if (*number < 1 || *number > 65535) {
      errors.Add(FieldPath(item_path, "containerPort"),
                 "must be between 1 and 65535, got " + std::to_string(*number));
    } else {
      port.container_port = static_cast<int>(*number);
    }
    port.name = ReadString(item, "name", item_path, errors).value_or("");
    if (auto protocol = ReadString(item, "protocol", item_path, errors)) {
      if (CheckEnum(*protocol, {"TCP", "UDP", "SCTP"}, FieldPath(item_path, "protocol"), errors)) {
        port.protocol = *protocol;
      }
    }
    ports.push_back(std::move(port));
  }
  return ports;
}

// The container fields shared by a full container and the model spec's inlined one.
void ParseContainerFields(const Json& object, std::string_view path, ContainerSpec& out,
                          FieldErrors& errors) {
  out.name = ReadString(object, "name", path, errors).value_or("");
  out.image = ReadString(object, "image", path, errors).value_or("");
  out.command = ReadStringList(object, "command", path, errors);
  out.args = ReadStringList(object, "args", path, errors);
  out.working_dir = ReadString(object, "workingDir", path, errors).value_or("");
  out.env = ParseEnv(object, path, errors);
  out.ports = ParsePorts(object, path, errors);
  out.resources = ParseResources(object, path, errors);
  RejectUnsupported(object, path, "envFrom",
                    "not supported: Quiver has no Secrets or ConfigMaps to read from; list the "
                    "variables under env",
                    errors);
}

std::optional<int> ReadBoundedInt(const Json& object, std::string_view key, std::string_view path,
                                  int64_t min, std::optional<int64_t> max, FieldErrors& errors) {
  std::optional<int64_t> value = ReadInt(object, key, path, errors);
  if (!value) return std::nullopt;
  if (*value < min) {
    errors.Add(FieldPath(path, key),
               "must be >= " + std::to_string(min) + ", got " + std::to_string(*value));
    return std::nullopt;
  }
  if (max && *value > *max) {
    errors.Add(FieldPath(path, key), "must be between " + std::to_string(min) + " and " +
                                         std::to_string(*max) + ", got " + std::to_string(*value));
    return std::nullopt;
  }
  return static_cast<int>(*value);
}

bool IsHttpUrl(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (url.substr(0, scheme.size()) == scheme && url.size() > scheme.size()) return true;
  }
  return false;
}

void ParseLogger(const Json& component, std::string_view path, ComponentSpec& out,
                 FieldErrors& errors) {
  const Json* json = ReadObject(component, "logger", path, errors);
  if (json == nullptr) return;
  std::string logger_path = FieldPath(path, "logger");
  CheckKnownFields(*json, logger_path,
                   {"url", "mode", "metadataHeaders", "metadataAnnotations", "storage",
                    "marshallerUrl", "batchSize", "batchInterval"},
                   {}, errors);
  for (std::string_view key : {"storage", "marshallerUrl", "batchSize", "batchInterval"}) {
    RejectUnsupported(*json, logger_path, key,
                      "not supported: Quiver sends each payload as a CloudEvent to url", errors);
  }
  LoggerSpec logger;
  std::optional<std::string> url = ReadString(*json, "url", logger_path, errors);
  if (!url) {
    if (!json->contains("url") || (*json)["url"].is_null()) {
      errors.Add(FieldPath(logger_path, "url"),
                 "required: the http(s) URL payload logs are sent to (there is no default "
                 "broker outside Kubernetes)");
    }
  } else if (!IsHttpUrl(*url)) {
    errors.Add(FieldPath(logger_path, "url"),
               "must be an http:// or https:// URL, got " + Json(*url).dump());
  } else {
    logger.url = *url;
  }
  if (auto mode = ReadString(*json, "mode", logger_path, errors)) {
    if (CheckEnum(*mode, {"all", "request", "response"}, FieldPath(logger_path, "mode"), errors)) {
      logger.mode = *mode == "request"    ? LoggerMode::kRequest
                    : *mode == "response" ? LoggerMode::kResponse
                                          : LoggerMode::kAll;
    }
  }
  logger.metadata_headers = ReadStringList(*json, "metadataHeaders", logger_path, errors);
  logger.metadata_annotations = ReadStringList(*json, "metadataAnnotations", logger_path, errors);
  out.logger = std::move(logger);
}

void ParseBatcher(const Json& component, std::string_view path, ComponentSpec& out,
                  FieldErrors& errors) {
  const Json* json = ReadObject(component, "batcher", path, errors);
  if (json == nullptr) return;
  std::string batcher_path = FieldPath(path, "batcher");
  CheckKnownFields(*json, batcher_path, {"maxBatchSize", "maxLatency", "timeout"}, {}, errors);
  BatcherSpec batcher;
  if (auto v = ReadBoundedInt(*json, "maxBatchSize", batcher_path, 1, std::nullopt, errors)) {
    batcher.max_batch_size = *v;
  }
  if (auto v = ReadBoundedInt(*json, "maxLatency", batcher_path, 1, std::nullopt, errors)) {
    batcher.max_latency_ms = *v;
  }
  batcher.timeout_seconds = ReadBoundedInt(*json, "timeout", batcher_path, 1, std::nullopt, errors);
  out.batcher = batcher;
}

void ParseExtension(const Json& component, std::string_view path, ComponentSpec& out,
                    FieldErrors& errors) {
  if (auto v = ReadBoundedInt(component, "minReplicas", path, 0, std::nullopt, errors)) {
    out.min_replicas = *v;
  }
  if (auto v = ReadBoundedInt(component, "maxReplicas", path, 0, std::nullopt, errors)) {
    // As in KServe and Knative, maxReplicas 0 means no upper bound.
    if (*v > 0) {
      if (*v < out.min_replicas) {
        errors.Add(FieldPath(path, "maxReplicas"), "must be >= minReplicas (" +
                                                       std::to_string(out.min_replicas) +
                                                       "), got " + std::to_string(*v));
      }
      out.max_replicas = *v;
    }
  }
  if (auto metric = ReadString(component, "scaleMetric", path, errors)) {
    if (CheckEnum(*metric, {"cpu", "memory", "concurrency", "rps"}, FieldPath(path, "scaleMetric"),
                  errors)) {
      out.scale_metric = *metric == "cpu"      ? ScaleMetric::kCpu
                         : *metric == "memory" ? ScaleMetric::kMemory
                         : *metric == "rps"    ? ScaleMetric::kRps
                                               : ScaleMetric::kConcurrency;
    }
  }
  if (auto type = ReadString(component, "scaleMetricType", path, errors)) {
    if (CheckEnum(*type, {"Utilization", "Value", "AverageValue"},
                  FieldPath(path, "scaleMetricType"), errors)) {
      out.scale_metric_type = *type;
    }
  }
  bool utilization =
      (out.scale_metric == ScaleMetric::kCpu || out.scale_metric == ScaleMetric::kMemory) &&
      out.scale_metric_type.value_or("Utilization") == "Utilization";
  // A utilization target is a percentage of the request (KServe's HPA validation).
  out.scale_target =
      ReadBoundedInt(component, "scaleTarget", path, 1,
                     utilization ? std::optional<int64_t>(100) : std::nullopt, errors);
  if (auto v = ReadBoundedInt(component, "containerConcurrency", path, 0, std::nullopt, errors)) {
    out.container_concurrency = *v;
  }
  if (component.contains("timeout") && !component["timeout"].is_null()) {
    std::optional<int64_t> timeout = ReadInt(component, "timeout", path, errors);
    if (timeout && *timeout <= 0) {
      errors.Add(FieldPath(path, "timeout"),
                 "must be > 0 seconds, got " + std::to_string(*timeout));
    } else if (timeout) {
      out.timeout_seconds = static_cast<int>(*timeout);
    }
  }
  out.canary_traffic_percent =
      ReadBoundedInt(component, "canaryTrafficPercent", path, 0, 100, errors);
  ParseLogger(component, path, out, errors);
  ParseBatcher(component, path, out, errors);
  out.labels = ReadStringMap(component, "labels", path, errors);
  out.annotations = ReadStringMap(component, "annotations", path, errors);
  RejectUnsupported(component, path, "autoScaling",
                    "not supported: Quiver autoscales with scaleMetric and scaleTarget "
                    "(Knative KPA semantics), not HPA/KEDA metric lists",
                    errors);
}

// predictor.model or a legacy framework key: the model to serve and the inlined container.
void ParseModel(const Json& model, std::string_view path, bool legacy, ComponentSpec& out,
                FieldErrors& errors) {
  std::vector<std::string_view> allowed =
      Concat({kContainerModelled,
              kContainerIgnored,
              {"storageUri", "runtimeVersion", "protocolVersion", "storage", "envFrom"}});
  if (!legacy) {
    allowed.push_back("modelFormat");
    allowed.push_back("runtime");
  }
  CheckKnownFields(model, path, allowed, errors);
  if (!legacy) {
    const Json* format = ReadObject(model, "modelFormat", path, errors);
    std::string format_path = FieldPath(path, "modelFormat");
    if (format == nullptr) {
      if (!model.contains("modelFormat") || model["modelFormat"].is_null()) {
        errors.Add(format_path, "required (for example {name: sklearn})");
      }
    } else {
      CheckKnownFields(*format, format_path, {"name", "version"}, {}, errors);
      std::optional<std::string> name = ReadString(*format, "name", format_path, errors);
      if (!name || name->empty()) {
        if (!format->contains("name") || (*format)["name"].is_null() || name) {
          errors.Add(FieldPath(format_path, "name"), "required (for example sklearn)");
        }
      } else {
        out.model_format.name = *name;
      }
      out.model_format.version = ReadString(*format, "version", format_path, errors);
    }
    out.runtime = ReadString(model, "runtime", path, errors).value_or("");
  }
  if (auto uri = ReadString(model, "storageUri", path, errors)) {
    if (auto problem = StorageUriProblem(*uri)) {
      errors.Add(FieldPath(path, "storageUri"), *problem);
    } else {
      out.storage_uri = *uri;
    }
  }
  out.runtime_version = ReadString(model, "runtimeVersion", path, errors).value_or("");
  if (auto protocol = ReadString(model, "protocolVersion", path, errors)) {
    if (CheckEnum(*protocol, {"v1", "v2", "grpc-v1", "grpc-v2"}, FieldPath(path, "protocolVersion"),
                  errors)) {
      out.protocol_version = *ParseProtocol(*protocol);
    }
  }
  RejectUnsupported(model, path, "storage",
                    "not supported: storage specs refer to Kubernetes Secrets; use storageUri "
                    "(s3:// credentials come from the AWS_* environment)",
                    errors);
  ContainerSpec container;
  ParseContainerFields(model, path, container, errors);
  out.command = std::move(container.command);
  out.args = std::move(container.args);
  out.env = std::move(container.env);
  out.resources = std::move(container.resources);
  out.ports = std::move(container.ports);
}

bool Present(const Json& object, std::string_view key) {
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

ComponentSpec ParseComponent(const Json& doc_spec, ComponentType type, FieldErrors& errors) {
  std::string name(ComponentTypeName(type));
  std::string path = "spec." + name;
  ComponentSpec out;
  const Json& component = doc_spec[name];
  if (!component.is_object()) {
    errors.Add(path, "must be an object, got " + Describe(component));
    return out;
  }
  std::vector<std::string_view> allowed = Concat({kExtensionModelled, kPodIgnored});
  if (type == ComponentType::kPredictor) {
    allowed.insert(allowed.end(),
                   {"model", "name", "storageUris", "storageContainerName", "workerSpec"});
    for (std::string_view key : kFrameworkKeys) allowed.push_back(key);
  }
  if (type == ComponentType::kExplainer) allowed.push_back("art");
  CheckKnownFields(component, path, allowed, errors);

  ParseExtension(component, path, out, errors);
  out.containers = ParseContainers(component, path, errors);

  if (type == ComponentType::kPredictor) {
    RejectUnsupported(component, path, "storageUris", "not supported: give one model.storageUri",
                      errors);
    RejectUnsupported(component, path, "workerSpec",
                      "not supported: Quiver serves a model from one process (no multi-node "
                      "tensor or pipeline parallelism)",
                      errors);
    ReadString(component, "name", path, errors);
    std::vector<std::string> forms;
    if (Present(component, "model")) forms.push_back("model");
    for (std::string_view key : kFrameworkKeys) {
      if (Present(component, key)) forms.emplace_back(key);
    }
    if (!out.containers.empty() || Present(component, "containers")) forms.push_back("containers");
    if (forms.size() != 1) {
      std::string got = forms.empty() ? "none" : "";
      for (size_t i = 0; i < forms.size(); ++i) {
        if (i > 0) got += i + 1 == forms.size() ? " and " : ", ";
        got += forms[i];
      }
      errors.Add(path,
                 "exactly one of model, a framework key (sklearn, xgboost, pytorch, onnx, "
                 "tensorflow, triton, huggingface, pmml, lightgbm, paddle) or containers is "
                 "required, got " +
                     got);
      return out;
    }
    const std::string& form = forms.front();
    if (form == "containers") {
      out.kind = ComponentSpec::Kind::kContainers;
    } else {
      out.kind = ComponentSpec::Kind::kModel;
      const Json* model = ReadObject(component, form, path, errors);
      if (model != nullptr) {
        bool legacy = form != "model";
        if (legacy) out.model_format.name = form;
        ParseModel(*model, FieldPath(path, form), legacy, out, errors);
      }
    }
  } else {
    RejectUnsupported(component, path, "art",
                      "not supported: Quiver runs explainers as custom containers "
                      "(explainer.containers)",
                      errors);
    out.kind = ComponentSpec::Kind::kContainers;
    if (out.containers.empty() && !Present(component, "containers")) {
      errors.Add(FieldPath(path, "containers"),
                 "required: a " + name + " is a custom container (containers[0])");
    }
  }
  if (out.kind == ComponentSpec::Kind::kContainers && !out.containers.empty()) {
    for (const EnvVar& var : out.containers.front().env) {
      if (var.name != "STORAGE_URI") continue;
      if (auto problem = StorageUriProblem(var.value)) {
        errors.Add(path + ".containers[0].env[STORAGE_URI]", *problem);
      } else {
        out.storage_uri = var.value;
      }
    }
  }
  return out;
}

uint64_t Fnv1a64(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

}  // namespace

ContainerSpec ParseContainer(const Json& container, std::string_view path, FieldErrors& errors) {
  ContainerSpec out;
  if (!container.is_object()) {
    errors.Add(path, "must be a container object, got " + Describe(container));
    return out;
  }
  CheckKnownFields(container, path, Concat({kContainerModelled, kContainerIgnored, {"envFrom"}}),
                   errors);
  ParseContainerFields(container, path, out, errors);
  if (out.image.empty() && out.command.empty()) {
    errors.Add(path, "needs an image or a command (Quiver runs command + args as a local process)");
  }
  return out;
}

std::vector<ContainerSpec> ParseContainers(const Json& object, std::string_view path,
                                           FieldErrors& errors) {
  std::vector<ContainerSpec> containers;
  const Json* list = ReadArray(object, "containers", path, errors);
  if (list == nullptr) return containers;
  std::string list_path = FieldPath(path, "containers");
  if (list->empty()) errors.Add(list_path, "must not be empty");
  for (size_t i = 0; i < list->size(); ++i) {
    containers.push_back(ParseContainer((*list)[i], IndexPath(list_path, i), errors));
  }
  return containers;
}

std::optional<std::string> StorageUriProblem(std::string_view uri) {
  if (uri.empty()) return "must not be empty";
  size_t scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;  // a local path
  std::string_view scheme = uri.substr(0, scheme_end);
  std::string_view rest = uri.substr(scheme_end + 3);
  constexpr std::string_view kAccepted =
      "a local path or a URI with scheme file://, http://, https://, s3://, gs:// or pvc://";
  if (scheme == "file") {
    if (rest.empty()) return "file:// needs a path, e.g. file:///models/iris";
    return std::nullopt;
  }
  if (scheme == "http" || scheme == "https") {
    if (rest.empty() || rest.front() == '/') {
      return std::string(scheme) + ":// needs a host, got " + Json(std::string(uri)).dump();
    }
    return std::nullopt;
  }
  if (scheme == "s3" || scheme == "gs") {
    if (rest.empty() || rest.front() == '/') {
      return std::string(scheme) + ":// needs a bucket, e.g. " + std::string(scheme) +
             "://bucket/path, got " + Json(std::string(uri)).dump();
    }
    return std::nullopt;
  }
  if (scheme == "pvc") {
    if (rest.empty() || rest.front() == '/') {
      return "pvc:// needs a claim name, e.g. pvc://claim/path, got " +
             Json(std::string(uri)).dump();
    }
    return std::nullopt;
  }
  return "unsupported scheme \"" + std::string(scheme) + "://\"; expected " +
         std::string(kAccepted);
}

InferenceService ParseInferenceService(const Json& doc, FieldErrors& errors) {
  InferenceService isvc;
  isvc.metadata = ReadObjectMeta(doc);
  auto spec_it = doc.find("spec");
  if (spec_it == doc.end() || spec_it->is_null()) {
    errors.Add("spec", "required (an InferenceService needs spec.predictor)");
    return isvc;
  }
  const Json& spec = *spec_it;
  if (!spec.is_object()) {
    errors.Add("spec", "must be an object, got " + Describe(spec));
    return isvc;
  }
  CheckKnownFields(spec, "spec", {"predictor", "transformer", "explainer", "canary"}, {}, errors);
  RejectUnsupported(spec, "spec", "canary",
                    "not supported: use predictor.canaryTrafficPercent for a canary rollout",
                    errors);
  if (!Present(spec, "predictor")) {
    errors.Add("spec.predictor", "required");
  } else {
    isvc.predictor = ParseComponent(spec, ComponentType::kPredictor, errors);
  }
  if (Present(spec, "transformer")) {
    isvc.transformer = ParseComponent(spec, ComponentType::kTransformer, errors);
  }
  if (Present(spec, "explainer")) {
    isvc.explainer = ParseComponent(spec, ComponentType::kExplainer, errors);
  }
  return isvc;
}

void DefaultInferenceService(Json& doc) {
  Json& spec = doc["spec"];
  for (std::string_view name : {"predictor", "transformer", "explainer"}) {
    auto it = spec.find(name);
    if (it == spec.end() || !it->is_object()) continue;
    Json& component = *it;
    if (name == "predictor") {
      for (std::string_view key : kFrameworkKeys) {
        auto legacy = component.find(key);
        if (legacy == component.end() || legacy->is_null()) continue;
        // KServe's defaulter turns `sklearn: {storageUri: ...}` into the model spec; the same
        // document then selects a runtime by modelFormat like any other.
        Json model = Json::object();
        model["modelFormat"] = Json{{"name", std::string(key)}};
        for (auto& [field, value] : legacy->items()) model[field] = value;
        component.erase(std::string(key));
        component["model"] = std::move(model);
        break;
      }
    }
    if (!component.contains("minReplicas") || component["minReplicas"].is_null()) {
      component["minReplicas"] = 1;
    }
    auto logger = component.find("logger");
    if (logger != component.end() && logger->is_object() &&
        (!logger->contains("mode") || (*logger)["mode"].is_null())) {
      (*logger)["mode"] = "all";
    }
    auto containers = component.find("containers");
    if (containers != component.end() && containers->is_array() && !containers->empty()) {
      Json& first = (*containers)[0];
      if (first.is_object() && (!first.contains("name") || first["name"].is_null())) {
        first["name"] = "kserve-container";
      }
    }
  }
}

std::string ComponentFingerprint(const Json& component) {
  Json copy = component;
  if (copy.is_object()) copy.erase("canaryTrafficPercent");
  // nlohmann::json (unlike ordered_json) keeps object keys sorted, which makes the text
  // canonical whatever order the user wrote.
  std::string canonical = nlohmann::json::parse(copy.dump()).dump();
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(Fnv1a64(canonical)));
  return hex;
}

StatusOr<InferenceService> InferenceServiceFromJson(const Json& doc) {
  if (!doc.is_object()) return InvalidArgument("an InferenceService must be an object");
  FieldErrors errors;
  ParseInferenceService(doc, errors);
  if (!errors.empty()) return errors.ToStatus();
  Json defaulted = doc;
  DefaultInferenceService(defaulted);
  InferenceService isvc = ParseInferenceService(defaulted, errors);
  if (!errors.empty()) return errors.ToStatus();
  const Json& spec = defaulted["spec"];
  isvc.predictor.fingerprint = ComponentFingerprint(spec["predictor"]);
  if (isvc.transformer) isvc.transformer->fingerprint = ComponentFingerprint(spec["transformer"]);
  if (isvc.explainer) isvc.explainer->fingerprint = ComponentFingerprint(spec["explainer"]);
  return isvc;
}

const std::vector<std::string_view>& InlinedPodFields() { return kPodIgnored; }

}  // namespace quiver::spec
