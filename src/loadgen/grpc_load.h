// The gRPC load engine: sender threads, each with its own completion queue (the asynchronous
// API, polled by that thread: its event loop) and its own channel (one HTTP/2 connection;
// concurrent streams multiplex on it). Requests are built once and reused; each call gets a new
// ClientContext with the request timeout as its deadline.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "grpc_predict_v2.pb.h"
#include "loadgen/load_engine.h"
#include "loadgen/model_inputs.h"

namespace quiver::loadgen {

struct GrpcLoadOptions {
  std::string address;  // host:port
  // Sent round-robin; at least one.
  std::shared_ptr<const std::vector<inference::ModelInferRequest>> requests;
  EngineOptions engine;
};

// An OK status is a success; any other status is an error counted by its code.
std::unique_ptr<LoadEngine> CreateGrpcLoadEngine(GrpcLoadOptions options);

// ModelMetadata over gRPC, as a ModelSpec. NOT_FOUND becomes kNotFound with the server's
// message, an unreachable server kUnavailable.
StatusOr<ModelSpec> FetchGrpcModelMetadata(const std::string& address, const std::string& model,
                                           const std::string& version,
                                           std::chrono::milliseconds timeout);

}  // namespace quiver::loadgen
