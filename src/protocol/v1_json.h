// KServe's V1 protocol (TensorFlow-Serving style `:predict`) for tensor models: `instances`
// are the rows of the batch input, or objects of named rows for several inputs; `inputs` is the
// columnar form. The answer is `{"predictions": ...}`: the rows of the one output, or objects of
// named rows when there are several. Thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tensor/infer.h"

namespace quiver {

// `inputs` are the model's declared inputs (names and datatypes are taken from them when given;
// otherwise one input "input-0" and datatypes guessed from the JSON values).
Status DecodeV1Request(std::string_view body, const std::vector<TensorSpec>& inputs,
                       InferRequest* request);

Status EncodeV1Response(const InferResponse& response, std::string* out);

}  // namespace quiver
