// InferRequest and InferResponse: the protocol-neutral form of one inference call, shared by
// every frontend (REST v2, V1, gRPC) and every runtime. Values; a request's tensors may borrow
// the bytes of the body they were decoded from (`body` keeps it alive).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace quiver {

// Metadata of one input or output; -1 in the shape marks a variable dimension.
struct TensorSpec {
  std::string name;
  DataType datatype = DataType::kFp32;
  Shape shape;
};

struct RequestedOutput {
  std::string name;
  Parameters parameters;
};

// A request's HTTP headers (names lower-cased) or gRPC metadata, in arrival order; a name may
// repeat. Only models that ask for them get them (Model::WantsHeaders).
using RequestHeaders = std::vector<std::pair<std::string, std::string>>;

struct InferRequest {
  std::string model_name;
  std::string model_version;  // empty: the model's only/default version
  std::string id;             // empty when the client sent none
  Parameters parameters;
  std::vector<Tensor> inputs;
  // Empty: return every output.
  std::vector<RequestedOutput> outputs;
  // Set by the frontends only for a model whose WantsHeaders() is true; null otherwise, so other
  // models pay nothing. Shared, immutable: a batch passes on its first request's headers.
  std::shared_ptr<const RequestHeaders> headers;

  const Tensor* FindInput(std::string_view name) const {
    for (const auto& t : inputs) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<Tensor> outputs;
};

}  // namespace quiver
