#include "spec/resource.h"

#include <algorithm>
#include <cctype>

#include "spec/validators.h"

namespace quiver::spec {

const std::vector<KindInfo>& AllKinds() {
  static const std::vector<KindInfo> kKinds = {
      {Kind::kInferenceService, "InferenceService", "serving.kserve.io", "v1beta1",
       "inferenceservices", "isvc", true},
      {Kind::kServingRuntime, "ServingRuntime", "serving.kserve.io", "v1alpha1", "servingruntimes",
       "", true},
      {Kind::kClusterServingRuntime, "ClusterServingRuntime", "serving.kserve.io", "v1alpha1",
       "clusterservingruntimes", "", false},
      {Kind::kInferenceGraph, "InferenceGraph", "serving.kserve.io", "v1alpha1", "inferencegraphs",
       "ig", true},
      {Kind::kTrainedModel, "TrainedModel", "serving.kserve.io", "v1alpha1", "trainedmodels", "tm",
       true},
  };
  return kKinds;
}

const KindInfo& InfoOf(Kind kind) {
  for (const KindInfo& info : AllKinds()) {
    if (info.kind == kind) return info;
  }
  return AllKinds().front();  // unreachable: every enumerator is in the table
}

namespace {

std::string Lower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

const KindInfo* FindKindByName(std::string_view name) {
  for (const KindInfo& info : AllKinds()) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

std::string KindNames() {
  std::string names;
  for (const KindInfo& info : AllKinds()) {
    if (!names.empty()) names += ", ";
    names += info.name;
  }
  return names;
}

std::string ApiVersion(const KindInfo& info) {
  return std::string(info.group) + "/" + std::string(info.version);
}

}  // namespace

const KindInfo* FindKind(std::string_view any_name) {
  std::string lower = Lower(any_name);
  // kubectl also accepts "inferenceservices.serving.kserve.io".
  for (const KindInfo& info : AllKinds()) {
    std::string plural(info.plural);
    if (lower == Lower(info.name) || lower == plural ||
        lower == plural + "." + std::string(info.group) ||
        (!info.short_name.empty() && lower == info.short_name)) {
      return &info;
    }
  }
  return nullptr;
}

ObjectMeta ReadObjectMeta(const Json& doc) {
  ObjectMeta meta;
  auto it = doc.find("metadata");
  if (it == doc.end() || !it->is_object()) return meta;
  const Json& metadata = *it;
  FieldErrors ignored;
  meta.name = ReadString(metadata, "name", "metadata", ignored).value_or("");
  meta.namespace_name = ReadString(metadata, "namespace", "metadata", ignored).value_or("");
  meta.labels = ReadStringMap(metadata, "labels", "metadata", ignored);
  meta.annotations = ReadStringMap(metadata, "annotations", "metadata", ignored);
  meta.uid = ReadString(metadata, "uid", "metadata", ignored).value_or("");
  auto generation = metadata.find("generation");
  if (generation != metadata.end() && generation->is_number_integer()) {
    meta.generation = generation->get<int64_t>();
  }
  meta.resource_version = ReadString(metadata, "resourceVersion", "metadata", ignored).value_or("");
  meta.creation_timestamp =
      ReadString(metadata, "creationTimestamp", "metadata", ignored).value_or("");
  return meta;
}

void ValidateMetadata(const Json& doc, Kind kind, FieldErrors& errors) {
  auto it = doc.find("metadata");
  if (it == doc.end() || it->is_null()) {
    errors.Add("metadata", "required (with metadata.name)");
    return;
  }
  const Json& metadata = *it;
  if (!metadata.is_object()) {
    errors.Add("metadata", "must be an object, got " + Describe(metadata));
    return;
  }
  CheckKnownFields(metadata, "metadata",
                   {"name", "namespace", "labels", "annotations", "uid", "generation",
                    "resourceVersion", "creationTimestamp", "generateName"},
                   {"finalizers", "ownerReferences", "managedFields", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "selfLink"},
                   errors);
  if (metadata.contains("generateName") && !metadata["generateName"].is_null()) {
    errors.Add("metadata.generateName", "not supported: give metadata.name");
  }
  std::optional<std::string> name = ReadString(metadata, "name", "metadata", errors);
  if (!name) {
    if (!metadata.contains("name") || metadata["name"].is_null()) {
      errors.Add("metadata.name", "required");
    }
  } else if (kind == Kind::kInferenceService || kind == Kind::kInferenceGraph) {
    // KServe requires a DNS-1035 label: the name becomes a Service name and a host label.
    if (!IsDns1035Label(*name)) {
      errors.Add("metadata.name",
                 "must be a DNS-1035 label (lower-case letters, digits and '-', starting with a "
                 "letter, ending with a letter or digit, at most 63 characters), got " +
                     Json(*name).dump());
    }
  } else if (kind == Kind::kTrainedModel) {
    if (!IsDns1123Label(*name)) {
      errors.Add("metadata.name",
                 "must be a DNS-1123 label (lower-case letters, digits and '-', starting and "
                 "ending with a letter or digit, at most 63 characters), got " +
                     Json(*name).dump());
    }
  } else if (!IsDns1123Subdomain(*name)) {
    errors.Add("metadata.name",
               "must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting "
               "and ending with a letter or digit, at most 253 characters), got " +
                   Json(*name).dump());
  }
  if (auto ns = ReadString(metadata, "namespace", "metadata", errors)) {
    if (!IsDns1123Label(*ns)) {
      errors.Add("metadata.namespace",
                 "must be a DNS-1123 label (lower-case letters, digits and '-', starting and "
                 "ending with a letter or digit, at most 63 characters), got " +
                     Json(*ns).dump());
    }
  }
  ReadStringMap(metadata, "labels", "metadata", errors);
  ReadStringMap(metadata, "annotations", "metadata", errors);
  ReadString(metadata, "uid", "metadata", errors);
  ReadInt(metadata, "generation", "metadata", errors);
  ReadString(metadata, "resourceVersion", "metadata", errors);
  ReadString(metadata, "creationTimestamp", "metadata", errors);
}

Status DefaultAndValidate(Json& doc, std::string_view default_namespace) {
  if (!doc.is_object()) {
    return InvalidArgument(
        "a resource must be an object with apiVersion, kind, metadata and "
        "spec, got " +
        Describe(doc));
  }
  FieldErrors errors;
  auto kind_it = doc.find("kind");
  if (kind_it == doc.end() || kind_it->is_null()) {
    return InvalidArgument("kind: required; expected one of " + KindNames());
  }
  if (!kind_it->is_string()) {
    return InvalidArgument("kind: must be a string, got " + Describe(*kind_it));
  }
  const KindInfo* info = FindKindByName(kind_it->get<std::string>());
  if (info == nullptr) {
    return InvalidArgument("kind: unknown kind " + kind_it->dump() + "; expected one of " +
                           KindNames());
  }
  std::string expected_api_version = ApiVersion(*info);
  auto api_it = doc.find("apiVersion");
  if (api_it == doc.end() || api_it->is_null()) {
    errors.Add("apiVersion", "required: " + expected_api_version);
  } else if (!api_it->is_string() || api_it->get<std::string>() != expected_api_version) {
    errors.Add("apiVersion", "must be " + expected_api_version + " for " + std::string(info->name) +
                                 ", got " + Describe(*api_it));
  }
  // status is written by Quiver; accepted (and left alone) so that `get -o yaml` output can be
  // applied again.
  CheckKnownFields(doc, "", {"apiVersion", "kind", "metadata", "spec", "status"}, {}, errors);

  auto metadata = doc.find("metadata");
  if (metadata != doc.end() && metadata->is_object()) {
    if (info->namespaced) {
      if (!metadata->contains("namespace") || (*metadata)["namespace"].is_null()) {
        (*metadata)["namespace"] = std::string(default_namespace);
      }
    } else {
      // Cluster-scoped, as kubectl treats it: a namespace in the manifest means nothing.
      metadata->erase("namespace");
    }
  }
  ValidateMetadata(doc, info->kind, errors);
  switch (info->kind) {
    case Kind::kInferenceService:
      ParseInferenceService(doc, errors);
      break;
    case Kind::kServingRuntime:
    case Kind::kClusterServingRuntime:
      ParseServingRuntime(doc, errors);
      break;
    case Kind::kInferenceGraph:
      ParseInferenceGraph(doc, errors);
      break;
    case Kind::kTrainedModel:
      ParseTrainedModel(doc, errors);
      break;
  }
  if (!errors.empty()) return errors.ToStatus();
  if (info->kind == Kind::kInferenceService) DefaultInferenceService(doc);
  return Status::Ok();
}

Kind KindOf(const Json& doc) {
  const KindInfo* info = FindKindByName(doc.value("kind", ""));
  return info != nullptr ? info->kind : Kind::kInferenceService;
}

}  // namespace quiver::spec
