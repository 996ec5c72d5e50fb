// GrpcFrontend: the Open Inference Protocol's GRPCInferenceService on gRPC C++'s callback API,
// over the same repository and scheduling as the REST frontend. RPCs never block a gRPC
// thread on a model: inference completes from the model's instance (or inline for short
// models), load and unload from the control thread. Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/server_core.h"

namespace quiver {

struct GrpcOptions {
  std::string host = "0.0.0.0";
  int port = 8081;  // 0 picks a free port
  // KServe's defaults (--grpc_max_send_message_length / --grpc_max_receive_message_length).
  int max_receive_bytes = 8 << 20;
  int max_send_bytes = 8 << 20;
};

class GrpcFrontend {
 public:
  static StatusOr<std::unique_ptr<GrpcFrontend>> Start(ServerCore* core,
                                                       const GrpcOptions& options);
  ~GrpcFrontend();

  int port() const;
  // Stops accepting RPCs and waits for those in flight, at most until `deadline`.
  void Shutdown(std::chrono::system_clock::time_point deadline);

  struct Impl;

 private:
  explicit GrpcFrontend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver
