// Request bytes a load generator sends, built once before the run and reused for every request:
// v2 REST bodies (JSON, or the binary tensor data extension), whole HTTP/1.1 requests, and gRPC
// ModelInferRequest messages. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "grpc_predict_v2.pb.h"
#include "tensor/tensor.h"

namespace quiver::loadgen {

// `/v2/models/{name}` or `/v2/models/{name}/versions/{version}`, with the name and version
// percent-escaped where they hold characters a path cannot.
std::string ModelPath(std::string_view model, std::string_view version);

// A v2 JSON infer request: {"inputs":[{"name","shape","datatype","data":[...]}]}. FP16 and BF16
// cannot be sent as JSON numbers that servers accept (Triton and Quiver refuse them): an error
// that suggests --binary or gRPC.
StatusOr<std::string> EncodeJsonInferBody(const std::vector<Tensor>& inputs);

// A binary-extension request: a JSON header giving each input's `binary_data_size` and asking for
// binary outputs, followed by the raw bytes of the inputs in order. `*header_size` is the length
// of the JSON part (the Inference-Header-Content-Length value).
std::string EncodeBinaryInferBody(const std::vector<Tensor>& inputs, size_t* header_size);

// A complete keep-alive `POST path HTTP/1.1` request with `body`; with `header_size`, also the
// Inference-Header-Content-Length header and an octet-stream content type.
std::string HttpPostRequest(std::string_view host, std::string_view path, std::string_view body,
                            std::optional<size_t> header_size);

// A gRPC infer request with every input in raw_input_contents (the form perf_analyzer and
// Triton's clients use).
inference::ModelInferRequest EncodeGrpcInferRequest(std::string_view model,
                                                    std::string_view version,
                                                    const std::vector<Tensor>& inputs);

}  // namespace quiver::loadgen
