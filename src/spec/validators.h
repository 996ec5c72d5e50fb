// Private to src/spec: the per-kind parsers that both DefaultAndValidate and the typed views use,
// so that validation and the views can never disagree. Each reads a whole document, records
// every problem in `errors` with its field path, and returns the best view it could build.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "spec/field_reader.h"
#include "spec/inference_graph.h"
#include "spec/inference_service.h"
#include "spec/serving_runtime.h"
#include "spec/trained_model.h"

namespace quiver::spec {

// Checks metadata (name rules per kind, namespace, label and annotation types).
void ValidateMetadata(const Json& doc, Kind kind, FieldErrors& errors);

InferenceService ParseInferenceService(const Json& doc, FieldErrors& errors);
// Legacy framework keys → predictor.model, minReplicas 1, logger.mode all, containers[0].name
// kserve-container. Only call on a document that parsed without errors.
void DefaultInferenceService(Json& doc);

ServingRuntime ParseServingRuntime(const Json& doc, FieldErrors& errors);
InferenceGraph ParseInferenceGraph(const Json& doc, FieldErrors& errors);
TrainedModel ParseTrainedModel(const Json& doc, FieldErrors& errors);

// A Kubernetes container at `path` (fields Quiver honours, Kubernetes-only ones accepted).
ContainerSpec ParseContainer(const Json& container, std::string_view path, FieldErrors& errors);
std::vector<ContainerSpec> ParseContainers(const Json& object, std::string_view path,
                                           FieldErrors& errors);

// Why `uri` is not a storageUri Quiver accepts, or nullopt when it is.
std::optional<std::string> StorageUriProblem(std::string_view uri);

}  // namespace quiver::spec
