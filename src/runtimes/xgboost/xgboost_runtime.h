// XgboostRuntime: the "xgboost" runtime plugin. Serves models saved by XGBoost 1.7 (.json, .ubj,
// .bst) in-process through the XGBoost C API, answering as KServe's xgbserver does.
// Thread-safe: Load, and Execute on every loaded model, may run concurrently on any threads.
#pragma once

#include <memory>
#include <string_view>

#include "runtime/model.h"

namespace quiver {

// A loaded model takes exactly one input, under any name, of shape [batch, num_features] and
// datatype FP32 or FP64 (integer and BOOL inputs are converted to FP32 first, as numpy does for
// xgbserver). It returns "output-0", FP32, shaped as `booster.predict(xgb.DMatrix(x))` would:
// [batch] for regression and binary objectives, [batch, classes] for multi:softprob.
class XgboostRuntime final : public Runtime {
 public:
  std::string_view name() const override { return "xgboost"; }

  // Loads `config.model_file`. `config.parameters` understood:
  //   nthread: threads XGBoost may use to load the model and inside one prediction (default 1).
  //            A server gets its parallelism from instances and concurrent requests; threads
  //            inside one call only pay off for very large batches and oversubscribe the CPU
  //            otherwise.
  // Errors: kInvalidArgument when there is no model file, it cannot be read or is not an XGBoost
  // model (the message names the file and gives XGBoost's reason), or a parameter is malformed;
  // kInternal when XGBoost fails on a model it loaded.
  StatusOr<std::unique_ptr<Model>> Load(const ModelConfig& config) override;
};

}  // namespace quiver
