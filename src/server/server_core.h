// ServerCore: the composition root of `quiver serve`'s data plane. It routes HTTP requests
// (Open Inference Protocol v2 REST with the binary tensor extension and the model repository
// extension, KServe's V1 protocol with CloudEvents, KServe's extras) to the model repository and
// schedules inference. Thread-safe: Handle runs concurrently on every I/O thread; model loads
// and unloads run on one control thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/server.h"
#include "observe/metrics_registry.h"
#include "observe/telemetry.h"
#include "repository/model_repository.h"
#include "server/control_queue.h"

namespace quiver {

struct ServerCoreOptions {
  std::string server_name = "quiver";
  std::string server_version;
  // Server-ready requires every model READY (Triton's --strict-readiness); otherwise only that
  // loading has finished. Models unloaded on purpose never count against readiness.
  bool strict_readiness = true;
  // Access log, tracing and payload logging; null when all are off (then a request pays one
  // branch). Not owned; outlives the ServerCore and the frontends.
  const observe::Telemetry* telemetry = nullptr;
  // GET /metrics serves this registry in the Prometheus text format; null: metrics are off and
  // /metrics is 404. Not owned; outlives the ServerCore.
  observe::MetricsRegistry* metrics = nullptr;
};

class ServerCore {
 public:
  ServerCore(ModelRepository* repository, ServerCoreOptions options);

  // The HTTP handler: answers at once, or later from a model instance or the control thread.
  void Handle(http::Request&& request, http::Responder responder);
  // Finishes queued control work (loads, unloads) and stops the control thread. Call after the
  // HTTP server has stopped and before it is destroyed.
  void Stop() { control_.reset(); }

  // For the gRPC frontend, which shares the repository, options and control thread.
  ModelRepository* repository() const { return repository_; }
  const ServerCoreOptions& options() const { return options_; }
  void PostControl(std::function<void()> task) { control_->Post(std::move(task)); }

 private:
  void HandleV2Model(std::string_view method, std::string_view name, std::string_view version,
                     std::string_view action, http::Request& request,
                     http::Responder& responder);
  void HandleRepository(std::string_view method, const std::vector<std::string_view>& seg,
                        http::Request& request, http::Responder& responder);
  void HandleV1(std::string_view method, const std::vector<std::string_view>& seg,
                http::Request& request, http::Responder& responder);
  void InferV2(std::shared_ptr<const ModelEntry> entry, http::Request& request,
               http::Responder& responder);
  // :predict, or :explain when `explain` (the model has an explainer).
  void PredictV1(std::shared_ptr<const ModelEntry> entry, http::Request& request,
                 http::Responder& responder, bool explain);

  ModelRepository* repository_;
  ServerCoreOptions options_;
  std::unique_ptr<ControlQueue> control_;
};

}  // namespace quiver
