// Open Inference Protocol over gRPC: ModelInferRequest/Response <-> InferRequest/Response.
// Typed `contents` and `raw_input_contents` are both accepted (never mixed); raw inputs borrow
// the request message's bytes, so the message must outlive the InferRequest. Pure functions.
#pragma once

#include "common/status.h"
#include "grpc_predict_v2.pb.h"
#include "tensor/infer.h"

namespace quiver {

Status DecodeGrpcRequest(const inference::ModelInferRequest& in, InferRequest* out);

// `raw`: answer in raw_output_contents (as when the request came raw). FP16/BF16 outputs have no
// typed form, so they make the whole answer raw.
Status EncodeGrpcResponse(const InferResponse& in, bool raw, inference::ModelInferResponse* out);

void ToGrpcParameters(const Parameters& in,
                      google::protobuf::Map<std::string, inference::InferParameter>* out);

}  // namespace quiver
