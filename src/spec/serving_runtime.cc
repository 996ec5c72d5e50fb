#include "spec/serving_runtime.h"

#include <algorithm>
#include <cctype>

#include "spec/validators.h"

namespace quiver::spec {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Pod-level fields of a runtime that only matter on a cluster, and ModelMesh's fields.
const std::vector<std::string_view> kRuntimeAllowed = {"supportedModelFormats",
                                                       "protocolVersions",
                                                       "multiModel",
                                                       "disabled",
                                                       "containers",
                                                       "labels",
                                                       "annotations",
                                                       "volumes",
                                                       "nodeSelector",
                                                       "affinity",
                                                       "tolerations",
                                                       "imagePullSecrets",
                                                       "hostIPC",
                                                       "hostNetwork",
                                                       "hostPID",
                                                       "schedulerName",
                                                       "resourceClaims",
                                                       "serviceAccountName",
                                                       "securityContext",
                                                       "priorityClassName",
                                                       "initContainers",
                                                       "dnsPolicy",
                                                       "runtimeClassName",
                                                       "topologySpreadConstraints",
                                                       "terminationGracePeriodSeconds",
                                                       "grpcEndpoint",
                                                       "grpcDataEndpoint",
                                                       "httpDataEndpoint",
                                                       "replicas",
                                                       "storageHelper",
                                                       "builtInAdapter",
                                                       "workerSpec"};

std::string KindName(const ServingRuntime& runtime) {
  return runtime.cluster_scoped ? "ClusterServingRuntime" : "ServingRuntime";
}

std::string FormatText(const ModelFormat& format) {
  std::string text = format.name;
  if (format.version) text += " version " + *format.version;
  return text;
}

std::string ProtocolList(const ServingRuntime& runtime) {
  std::string text;
  for (Protocol protocol : runtime.protocol_versions) {
    if (!text.empty()) text += ", ";
    text += ProtocolName(protocol);
  }
  return text;
}

const SupportedModelFormat* MatchingFormat(const ServingRuntime& runtime, const ModelFormat& format,
                                           bool require_auto_select) {
  for (const SupportedModelFormat& supported : runtime.supported_model_formats) {
    if (!EqualsIgnoreCase(supported.name, format.name)) continue;
    if (require_auto_select && !supported.auto_select) continue;
    if (supported.version && format.version && *supported.version != *format.version) continue;
    return &supported;
  }
  return nullptr;
}

const ServingRuntime* FindByName(const std::vector<ServingRuntime>& runtimes,
                                 std::string_view name) {
  for (const ServingRuntime& runtime : runtimes) {
    if (runtime.metadata.name == name) return &runtime;
  }
  return nullptr;
}

// Replaces Go-template placeholders the way KServe fills a runtime container from the
// InferenceService's ObjectMeta.
StatusOr<std::string> ExpandTemplates(const std::string& text, const LocalCommandOptions& options) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      out.append(text, pos, std::string::npos);
      return out;
    }
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      return InvalidArgument("unterminated template in " + Json(text).dump());
    }
    out.append(text, pos, open - pos);
    std::string expr = text.substr(open + 2, close - open - 2);
    size_t first = expr.find_first_not_of(' ');
    size_t last = expr.find_last_not_of(' ');
    expr = first == std::string::npos ? "" : expr.substr(first, last - first + 1);
    auto lookup = [](const std::map<std::string, std::string>& map, const std::string& key) {
      auto it = map.find(key);
      return it == map.end() ? std::string() : it->second;
    };
    auto index_key = [&](std::string_view prefix) -> std::optional<std::string> {
      // `index .Labels "key"`
      if (expr.rfind(prefix, 0) != 0) return std::nullopt;
      std::string rest = expr.substr(prefix.size());
      size_t start = rest.find_first_not_of(' ');
      if (start == std::string::npos || rest[start] != '"' || rest.back() != '"' ||
          rest.size() - start < 2) {
        return std::nullopt;
      }
      return rest.substr(start + 1, rest.size() - start - 2);
    };
    if (expr == ".Name") {
      out += options.name;
    } else if (expr == ".Namespace") {
      out += options.namespace_name;
    } else if (expr.rfind(".Labels.", 0) == 0) {
      out += lookup(options.labels, expr.substr(8));
    } else if (expr.rfind(".Annotations.", 0) == 0) {
      out += lookup(options.annotations, expr.substr(13));
    } else if (auto key = index_key("index .Labels ")) {
      out += lookup(options.labels, *key);
    } else if (auto key = index_key("index .Annotations ")) {
      out += lookup(options.annotations, *key);
    } else {
      return InvalidArgument("unsupported template {{" + expr + "}} in " + Json(text).dump() +
                             "; expected {{.Name}}, {{.Namespace}}, {{.Labels.key}} or "
                             "{{.Annotations.key}}");
    }
    pos = close + 2;
  }
}

constexpr std::string_view kMountedModelDir = "/mnt/models";

std::string ReplaceModelDir(const std::string& text, const std::string& model_dir) {
  if (model_dir.empty()) return text;
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t found = text.find(kMountedModelDir, pos);
    if (found == std::string::npos) break;
    size_t end = found + kMountedModelDir.size();
    bool starts_path = found == 0 || text[found - 1] == '=';
    bool ends_path = end == text.size() || text[end] == '/';
    out.append(text, pos, found - pos);
    out += starts_path && ends_path ? model_dir : std::string(kMountedModelDir);
    pos = end;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

void ReplaceFlagValue(std::vector<std::string>& argv, std::initializer_list<std::string_view> flags,
                      int port) {
  for (size_t i = 0; i < argv.size(); ++i) {
    for (std::string_view flag : flags) {
      std::string with_equals = std::string(flag) + "=";
      if (argv[i].rfind(with_equals, 0) == 0) {
        argv[i] = with_equals + std::to_string(port);
      } else if (argv[i] == flag && i + 1 < argv.size()) {
        argv[i + 1] = std::to_string(port);
      }
    }
  }
}

}  // namespace

ServingRuntime ParseServingRuntime(const Json& doc, FieldErrors& errors) {
  ServingRuntime runtime;
  runtime.metadata = ReadObjectMeta(doc);
  runtime.cluster_scoped = doc.value("kind", "") == "ClusterServingRuntime";
  auto spec_it = doc.find("spec");
  if (spec_it == doc.end() || spec_it->is_null()) {
    errors.Add("spec", "required (a runtime needs spec.containers and spec.supportedModelFormats)");
    return runtime;
  }
  const Json& spec = *spec_it;
  if (!spec.is_object()) {
    errors.Add("spec", "must be an object, got " + Describe(spec));
    return runtime;
  }
  CheckKnownFields(spec, "spec", kRuntimeAllowed, errors);
  if (const Json* formats = ReadArray(spec, "supportedModelFormats", "spec", errors)) {
    for (size_t i = 0; i < formats->size(); ++i) {
      const Json& item = (*formats)[i];
      std::string path = IndexPath("spec.supportedModelFormats", i);
      if (!item.is_object()) {
        errors.Add(path, "must be an object with name, got " + Describe(item));
        continue;
      }
      CheckKnownFields(item, path, {"name", "version", "autoSelect", "priority"}, {}, errors);
      SupportedModelFormat format;
      std::optional<std::string> name = ReadString(item, "name", path, errors);
      if (name && !name->empty()) {
        format.name = *name;
      } else if (name || !item.contains("name") || item["name"].is_null()) {
        errors.Add(FieldPath(path, "name"), "required (for example sklearn)");
      }
      format.version = ReadString(item, "version", path, errors);
      format.auto_select = ReadBool(item, "autoSelect", path, errors).value_or(false);
      if (auto priority = ReadInt(item, "priority", path, errors)) {
        if (*priority < 1) {
          errors.Add(FieldPath(path, "priority"), "must be >= 1, got " + std::to_string(*priority));
        } else {
          format.priority = static_cast<int>(*priority);
        }
      }
      // KServe rejects a runtime that gives one format two priorities: selection would depend
      // on which entry matched first.
      for (size_t j = 0; j < runtime.supported_model_formats.size(); ++j) {
        const SupportedModelFormat& earlier = runtime.supported_model_formats[j];
        if (!format.name.empty() && EqualsIgnoreCase(earlier.name, format.name) &&
            earlier.priority && format.priority && *earlier.priority != *format.priority) {
          errors.Add(FieldPath(path, "priority"), "differs from spec.supportedModelFormats[" +
                                                      std::to_string(j) +
                                                      "].priority for the same format " +
                                                      format.name + " (one priority per format)");
        }
      }
      runtime.supported_model_formats.push_back(std::move(format));
    }
  }
  if (const Json* protocols = ReadArray(spec, "protocolVersions", "spec", errors)) {
    for (size_t i = 0; i < protocols->size(); ++i) {
      const Json& item = (*protocols)[i];
      std::string path = IndexPath("spec.protocolVersions", i);
      if (!item.is_string()) {
        errors.Add(path, "must be one of v1|v2|grpc-v1|grpc-v2, got " + Describe(item));
        continue;
      }
      if (CheckEnum(item.get<std::string>(), {"v1", "v2", "grpc-v1", "grpc-v2"}, path, errors)) {
        runtime.protocol_versions.push_back(*ParseProtocol(item.get<std::string>()));
      }
    }
  }
  runtime.multi_model = ReadBool(spec, "multiModel", "spec", errors).value_or(false);
  runtime.disabled = ReadBool(spec, "disabled", "spec", errors).value_or(false);
  runtime.containers = ParseContainers(spec, "spec", errors);
  if (runtime.containers.empty() &&
      (!spec.contains("containers") || spec["containers"].is_null())) {
    errors.Add("spec.containers", "required: the runtime's serving container (containers[0])");
  }
  runtime.labels = ReadStringMap(spec, "labels", "spec", errors);
  runtime.annotations = ReadStringMap(spec, "annotations", "spec", errors);
  return runtime;
}

StatusOr<ServingRuntime> ServingRuntimeFromJson(const Json& doc) {
  if (!doc.is_object()) return InvalidArgument("a ServingRuntime must be an object");
  FieldErrors errors;
  ServingRuntime runtime = ParseServingRuntime(doc, errors);
  if (!errors.empty()) return errors.ToStatus();
  return runtime;
}

bool SupportsModelFormat(const ServingRuntime& runtime, const ModelFormat& format,
                         bool require_auto_select) {
  return MatchingFormat(runtime, format, require_auto_select) != nullptr;
}

bool SupportsProtocol(const ServingRuntime& runtime, Protocol protocol) {
  return runtime.protocol_versions.empty() ||
         std::find(runtime.protocol_versions.begin(), runtime.protocol_versions.end(), protocol) !=
             runtime.protocol_versions.end();
}

StatusOr<const ServingRuntime*> SelectRuntime(const ComponentSpec& predictor,
                                              const std::vector<ServingRuntime>& namespace_runtimes,
                                              const std::vector<ServingRuntime>& cluster_runtimes) {
  if (predictor.kind != ComponentSpec::Kind::kModel) {
    return InvalidArgument(
        "a predictor with custom containers runs them as they are; only "
        "predictor.model selects a ServingRuntime");
  }
  const ModelFormat& format = predictor.model_format;
  Protocol protocol = predictor.protocol_version;
  if (!predictor.runtime.empty()) {
    const ServingRuntime* runtime = FindByName(namespace_runtimes, predictor.runtime);
    if (runtime == nullptr) runtime = FindByName(cluster_runtimes, predictor.runtime);
    if (runtime == nullptr) {
      return NotFound(
          "spec.predictor.model.runtime: no ServingRuntime or ClusterServingRuntime "
          "named \"" +
          predictor.runtime + "\"");
    }
    std::string which = KindName(*runtime) + " \"" + runtime->metadata.name + "\"";
    if (runtime->disabled) {
      return InvalidArgument("spec.predictor.model.runtime: " + which + " is disabled");
    }
    if (runtime->multi_model) {
      return InvalidArgument("spec.predictor.model.runtime: " + which +
                             " is a multi-model runtime (multiModel: true); an "
                             "InferenceService predictor needs a single-model runtime");
    }
    if (!format.name.empty() && !SupportsModelFormat(*runtime, format, false)) {
      return InvalidArgument("spec.predictor.model.runtime: " + which +
                             " does not support model format " + FormatText(format));
    }
    if (!SupportsProtocol(*runtime, protocol)) {
      return InvalidArgument("spec.predictor.model.runtime: " + which +
                             " does not support protocol " + std::string(ProtocolName(protocol)) +
                             " (it supports " + ProtocolList(*runtime) + ")");
    }
    return runtime;
  }
  // Namespace runtimes always come before cluster ones, whatever their priorities.
  for (const std::vector<ServingRuntime>* runtimes : {&namespace_runtimes, &cluster_runtimes}) {
    std::vector<std::pair<int, const ServingRuntime*>> candidates;
    for (const ServingRuntime& runtime : *runtimes) {
      if (runtime.disabled || runtime.multi_model || !SupportsProtocol(runtime, protocol)) {
        continue;
      }
      const SupportedModelFormat* match = MatchingFormat(runtime, format, true);
      if (match == nullptr) continue;
      candidates.emplace_back(match->priority.value_or(0), &runtime);
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    if (!candidates.empty()) return candidates.front().second;
  }
  return NotFound("no runtime supports model format " + FormatText(format) + " with protocol " +
                  std::string(ProtocolName(protocol)) +
                  ": a runtime must be enabled, single-model, list the format with autoSelect: "
                  "true and support the protocol; or name one in spec.predictor.model.runtime");
}

ContainerSpec MergeContainers(const ContainerSpec& runtime_container,
                              const ComponentSpec& component) {
  ContainerSpec merged = runtime_container;
  if (!component.command.empty()) merged.command = component.command;
  // Kubernetes' strategic merge would replace args; KServe appends them so that an
  // InferenceService can add flags to the runtime's.
  merged.args.insert(merged.args.end(), component.args.begin(), component.args.end());
  for (const EnvVar& var : component.env) {
    auto it = std::find_if(merged.env.begin(), merged.env.end(),
                           [&](const EnvVar& existing) { return existing.name == var.name; });
    if (it != merged.env.end()) {
      it->value = var.value;
    } else {
      merged.env.push_back(var);
    }
  }
  for (const auto& [name, value] : component.resources.requests) {
    merged.resources.requests[name] = value;
  }
  for (const auto& [name, value] : component.resources.limits) {
    merged.resources.limits[name] = value;
  }
  if (!component.ports.empty()) merged.ports = component.ports;
  return merged;
}

StatusOr<LocalCommand> BuildLocalCommand(const ContainerSpec& container,
                                         const LocalCommandOptions& options) {
  LocalCommand command;
  std::vector<std::string> raw = container.command;
  raw.insert(raw.end(), container.args.begin(), container.args.end());
  if (raw.empty()) {
    return InvalidArgument("container \"" + container.name +
                           "\" has no command or args: Quiver runs containers as local "
                           "processes and cannot run an image (" +
                           (container.image.empty() ? std::string("none") : container.image) + ")");
  }
  for (const std::string& arg : raw) {
    QUIVER_ASSIGN_OR_RETURN(std::string expanded, ExpandTemplates(arg, options));
    command.argv.push_back(ReplaceModelDir(expanded, options.model_dir));
  }
  ReplaceFlagValue(command.argv, {"--http_port", "--http-port"}, options.http_port);
  if (options.grpc_port) {
    ReplaceFlagValue(command.argv, {"--grpc_port", "--grpc-port"}, *options.grpc_port);
  }
  for (const EnvVar& var : container.env) {
    if (var.name == "PORT") continue;
    QUIVER_ASSIGN_OR_RETURN(std::string expanded, ExpandTemplates(var.value, options));
    command.env.push_back(EnvVar{var.name, ReplaceModelDir(expanded, options.model_dir)});
  }
  command.env.push_back(EnvVar{"PORT", std::to_string(options.http_port)});
  command.working_dir = container.working_dir;
  return command;
}

}  // namespace quiver::spec
