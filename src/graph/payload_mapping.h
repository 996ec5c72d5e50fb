// How a step's request body is rewritten before it is sent: KServe's mapPredictionsToInstances
// (V1 chaining) and Quiver's mapOutputsToInputs (Open Inference Protocol v2 chaining, which
// KServe's router lacks). Pure functions; thread-safe.
#pragma once

#include <map>
#include <string>

#include "common/status.h"
#include "graph/gjson.h"

namespace quiver::graph {

// {"predictions": X, ...} → {"instances": X, ...}; any other body (not JSON, no "predictions")
// is returned unchanged, as KServe passes it on.
std::string MapPredictionsToInstances(const std::string& body);

// A v2 response {"id"?, "outputs": [{name, datatype, shape, data, parameters?}]} → a v2
// request {"id"?, "inputs": [...]}. With an empty `rename`, every output becomes an input of
// the same name; otherwise only the outputs it names, renamed. kInvalidArgument when the body
// is not such a response (binary-extension outputs without "data" included) or lacks a named
// output; the message lists what the response has.
StatusOr<std::string> MapOutputsToInputs(const std::string& body,
                                         const std::map<std::string, std::string>& rename);

}  // namespace quiver::graph
