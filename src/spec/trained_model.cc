#include "spec/trained_model.h"

#include <cmath>

#include "spec/quantity.h"
#include "spec/validators.h"

namespace quiver::spec {

TrainedModel ParseTrainedModel(const Json& doc, FieldErrors& errors) {
  TrainedModel model;
  model.metadata = ReadObjectMeta(doc);
  auto spec_it = doc.find("spec");
  if (spec_it == doc.end() || spec_it->is_null()) {
    errors.Add("spec", "required (a TrainedModel needs spec.inferenceService and spec.model)");
    return model;
  }
  const Json& spec = *spec_it;
  if (!spec.is_object()) {
    errors.Add("spec", "must be an object, got " + Describe(spec));
    return model;
  }
  CheckKnownFields(spec, "spec", {"inferenceService", "model"}, {}, errors);
  std::optional<std::string> parent = ReadString(spec, "inferenceService", "spec", errors);
  if (!parent) {
    if (!spec.contains("inferenceService") || spec["inferenceService"].is_null()) {
      errors.Add("spec.inferenceService", "required: the InferenceService that serves the model");
    }
  } else if (!IsDns1035Label(*parent)) {
    errors.Add("spec.inferenceService",
               "must be an InferenceService name (a DNS-1035 label), got " + Json(*parent).dump());
  } else {
    model.inference_service = *parent;
  }
  const Json* spec_model = ReadObject(spec, "model", "spec", errors);
  if (spec_model == nullptr) {
    if (!spec.contains("model") || spec["model"].is_null()) {
      errors.Add("spec.model", "required: {storageUri, framework, memory}");
    }
    return model;
  }
  CheckKnownFields(*spec_model, "spec.model", {"storageUri", "framework", "memory"}, {}, errors);
  std::optional<std::string> uri = ReadString(*spec_model, "storageUri", "spec.model", errors);
  if (!uri) {
    if (!spec_model->contains("storageUri")) errors.Add("spec.model.storageUri", "required");
  } else if (auto problem = StorageUriProblem(*uri)) {
    errors.Add("spec.model.storageUri", *problem);
  } else {
    model.storage_uri = *uri;
  }
  std::optional<std::string> framework = ReadString(*spec_model, "framework", "spec.model", errors);
  if (!framework || framework->empty()) {
    if (framework || !spec_model->contains("framework")) {
      errors.Add("spec.model.framework", "required (a model format such as sklearn)");
    }
  } else {
    model.framework = *framework;
  }
  auto memory = spec_model->find("memory");
  if (memory == spec_model->end() || memory->is_null()) {
    errors.Add("spec.model.memory", "required (the model's memory, e.g. 256Mi)");
  } else {
    StatusOr<std::string> text = QuantityText(*memory);
    if (!text.ok()) {
      errors.Add("spec.model.memory", text.status().message());
    } else {
      double bytes = ParseQuantity(*text).value();
      if (bytes <= 0) {
        errors.Add("spec.model.memory", "must be positive, got " + Json(*text).dump());
      } else {
        model.memory = *text;
        model.memory_bytes = static_cast<int64_t>(std::ceil(bytes));
      }
    }
  }
  return model;
}

StatusOr<TrainedModel> TrainedModelFromJson(const Json& doc) {
  if (!doc.is_object()) return InvalidArgument("a TrainedModel must be an object");
  FieldErrors errors;
  TrainedModel model = ParseTrainedModel(doc, errors);
  if (!errors.empty()) return errors.ToStatus();
  return model;
}

}  // namespace quiver::spec
