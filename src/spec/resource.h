// KServe resources as documents: the kinds Quiver understands (InferenceService, ServingRuntime,
// ClusterServingRuntime, InferenceGraph, TrainedModel), parsing YAML/JSON manifests into JSON
// documents, and KServe's defaulting and validation. Typed views for the reconciler live in
// inference_service.h and serving_runtime.h. Everything here is pure and thread-safe.
//
// A resource is kept as a JSON document (nlohmann::ordered_json, so keys keep the user's order in
// `get -o yaml`) with the Kubernetes shape: apiVersion, kind, metadata{name, namespace, labels,
// annotations, uid, generation, resourceVersion, creationTimestamp}, spec, status.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quiver::spec {

using Json = nlohmann::ordered_json;

enum class Kind {
  kInferenceService,
  kServingRuntime,
  kClusterServingRuntime,
  kInferenceGraph,
  kTrainedModel,
};

struct KindInfo {
  Kind kind;
  std::string_view name;         // "InferenceService"
  std::string_view group;        // "serving.kserve.io"
  std::string_view version;      // "v1beta1" or "v1alpha1"
  std::string_view plural;       // "inferenceservices" (the API path segment)
  std::string_view short_name;   // "isvc", "ig", "tm"; empty when KServe defines none
  bool namespaced;               // ClusterServingRuntime is cluster-scoped
};

// Every kind, in the order above.
const std::vector<KindInfo>& AllKinds();
const KindInfo& InfoOf(Kind kind);
// By kind name ("InferenceService"), plural ("inferenceservices"), singular lower-case
// ("inferenceservice") or short name ("isvc"), as kubectl accepts them; nullptr when unknown.
const KindInfo* FindKind(std::string_view any_name);

// One document of a manifest file, with where it came from for error messages.
struct Manifest {
  Json doc;
  std::string source;  // "file.yaml, document 2"
};

// Parses YAML or JSON text holding one or more documents (`---` separated; a `kind: List` with
// `items` is expanded). Empty documents are skipped. Errors name the source, the document and
// the line. Types are kept as written: 1 stays an integer, "1" a string, 0.5 a number.
StatusOr<std::vector<Manifest>> ParseManifests(std::string_view text, std::string_view source);

// Checks apiVersion/kind/metadata, applies KServe's defaults to spec (for example
// predictor.minReplicas 1, logger.mode all, the older framework keys such as `sklearn:` turned
// into predictor.model with modelFormat), and validates: every error names the field path and
// the reason, e.g. "spec.predictor.minReplicas: must be >= 0, got -1". Unknown fields are errors
// too ("spec.predictor.minReplica: unknown field"). metadata.namespace defaults to
// `default_namespace` for namespaced kinds. Returns all errors found, joined by "; ".
Status DefaultAndValidate(Json& doc, std::string_view default_namespace = "default");

// The kind of a document that passed DefaultAndValidate.
Kind KindOf(const Json& doc);

// JSON → YAML text (block style, keys in document order), for `quiver get -o yaml`.
std::string ToYaml(const Json& doc);

}  // namespace quiver::spec
