// A typed view of a validated TrainedModel (serving.kserve.io/v1alpha1): one more model for a
// multi-model InferenceService. Plain value type; thread-compatible.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "spec/object_meta.h"
#include "spec/resource.h"

namespace quiver::spec {

struct TrainedModel {
  ObjectMeta metadata;
  std::string inference_service;  // the parent InferenceService, same namespace
  std::string storage_uri;
  std::string framework;     // a model format name: sklearn, xgboost, ...
  std::string memory;        // as written, e.g. "256Mi"
  int64_t memory_bytes = 0;  // memory in bytes, rounded up
};

// The typed view of a TrainedModel document; errors are those of DefaultAndValidate
// (spec.inferenceService, spec.model.storageUri, framework and memory are required).
StatusOr<TrainedModel> TrainedModelFromJson(const Json& doc);

}  // namespace quiver::spec
