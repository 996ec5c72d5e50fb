// Open Inference Protocol v2 over JSON: request decoding and response encoding.
// Decoding checks everything a client can get wrong and names it by field path
// (`inputs[0].data[5]: value 300 is out of range for UINT8`). Thread-safe: each thread uses its
// own parser.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "tensor/infer.h"

namespace quiver {

// Decodes a v2 infer request body (JSON). Model name and version come from the URL and are not
// touched.
Status DecodeV2Request(std::string_view body, InferRequest* request);

// Encodes a v2 infer response. Fails (kInvalidArgument) for outputs JSON cannot carry: FP16/BF16
// and BYTES that are not UTF-8.
Status EncodeV2Response(const InferResponse& response, std::string* out);

// Writes a Parameters object (`{"k":v,...}`) with `w`.
class JsonWriter;
void WriteParameters(const Parameters& params, JsonWriter& w);

}  // namespace quiver
