// Open Inference Protocol v2 over REST: request decoding and response encoding, JSON and the
// binary tensor data extension (a JSON header of Inference-Header-Content-Length bytes followed
// by raw tensor bytes). Decoding checks everything a client can get wrong and names it by field
// path (`inputs[0].data[5]: value 300 is out of range for UINT8`). Thread-safe: each thread uses
// its own parser.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tensor/infer.h"

namespace quiver {

// Decodes a v2 infer request. `json_size` is the Inference-Header-Content-Length value, or
// nullopt when the whole body is JSON. Inputs sent as binary data borrow their bytes from `body`
// (the tensors keep it alive; nothing is copied). Model name and version are not touched.
Status DecodeV2Request(std::shared_ptr<const std::string> body, std::optional<size_t> json_size,
                       InferRequest* request);
// The same for a body that is all JSON (copies it; for tests and small callers).
Status DecodeV2Request(std::string_view json, InferRequest* request);

// Encodes a v2 infer response into `body`. Outputs go in binary form when the request asks
// (per-output `binary_data`, else request-level `binary_data_output`); then `*binary` is true,
// `*json_size` is the length of the JSON header and the caller sends
// Inference-Header-Content-Length. Fails (kInvalidArgument) for an output JSON cannot carry
// (FP16/BF16, BYTES that are not UTF-8).
Status EncodeV2Response(const InferRequest& request, const InferResponse& response,
                        std::string* body, size_t* json_size, bool* binary);

}  // namespace quiver
