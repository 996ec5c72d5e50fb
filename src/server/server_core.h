// ServerCore: the composition root of `quiver serve`'s data plane. It routes HTTP requests
// (Open Inference Protocol v2 REST and KServe's extras) to the model repository and schedules
// inference. Thread-safe: Handle runs concurrently on every I/O thread.
#pragma once

#include <string>

#include "http/server.h"
#include "repository/model_repository.h"

namespace quiver {

struct ServerCoreOptions {
  std::string server_name = "quiver";
  std::string server_version;
  // Server-ready requires every model READY (Triton's --strict-readiness); otherwise only that
  // loading has finished.
  bool strict_readiness = true;
};

class ServerCore {
 public:
  ServerCore(ModelRepository* repository, ServerCoreOptions options);

  // The HTTP handler: answers at once, or from a model instance thread when it completes.
  void Handle(http::Request&& request, http::Responder responder);

 private:
  void HandleModel(std::string_view method, std::string_view name, std::string_view version,
                   std::string_view action, http::Request& request, http::Responder& responder);
  void Infer(std::shared_ptr<const ModelEntry> entry, http::Request& request,
             http::Responder& responder);

  ModelRepository* repository_;
  ServerCoreOptions options_;
};

}  // namespace quiver
