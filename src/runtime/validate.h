// Checks a request against a model's declared inputs and outputs before the model runs, so
// every runtime gets the same clear 400s. Pure functions.
#pragma once

#include "runtime/model.h"

namespace quiver {

// Input names, count, datatypes and shapes (-1 matches any size) when metadata.check_inputs;
// duplicate input names always; requested output names when the model declares outputs.
Status CheckRequest(const ModelMetadata& metadata, const InferRequest& request);

// After execution: every requested output exists; drops the ones not requested.
Status SelectOutputs(const InferRequest& request, InferResponse* response);

}  // namespace quiver
