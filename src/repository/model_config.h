// Reads a model folder into a ModelConfig: its optional config.yaml, then format detection from
// the files when the config does not name one. Errors name the file and field
// (`config.yaml: instance_count: must be >= 1, got 0`). Pure functions of the file system.
#pragma once

#include <filesystem>
#include <string>

#include "runtime/model.h"

namespace quiver {

// `name` is the model's name (the folder's name in a repository, --model_name otherwise).
StatusOr<ModelConfig> ReadModelConfig(const std::filesystem::path& dir, const std::string& name);

// Parses config.yaml text; `dir` is used for model_file paths and messages.
StatusOr<ModelConfig> ParseModelConfigYaml(const std::string& yaml,
                                           const std::filesystem::path& dir,
                                           const std::string& name);

// Checks a batching configuration's ranges (preferred sizes within max_batch_size, ...).
Status ValidateBatching(const BatchingConfig& batching);

// Picks the format and model file from the files in `dir` (not recursive):
// *.json|*.ubj|*.bst -> xgboost, *.pt -> pytorch, *.onnx -> onnx,
// *.joblib|*.pkl|*.pickle -> sklearn. Fills config->format and config->model_file; keeps a
// format already set and only looks for its file.
Status DetectModelFile(const std::filesystem::path& dir, ModelConfig* config);

}  // namespace quiver
