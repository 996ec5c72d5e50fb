// ControlPlane: the composition root of `quiver up`. It owns the durable store, the REST API,
// the gateway, the storage initializer and the reconciler (which owns the supervisor); Start
// starts them after the store, Stop stops them in the reverse order. Thread-safety:
// Create/Start/Stop from one thread; Stop is idempotent.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "api/api_server.h"
#include "common/status.h"
#include "control/reconciler.h"
#include "gateway/gateway.h"
#include "storage/storage_initializer.h"
#include "store/store.h"

namespace quiver {

struct ControlPlaneOptions {
  std::string state_dir;  // must exist; holds state.db, models/ (the cache) and logs/
  api::ApiServerOptions api;
  std::string gateway_host = "0.0.0.0";
  uint16_t gateway_port = 8080;  // KServe's ingress port; 0 picks one
  std::string domain = "example.com";
  autoscale::KpaConfig kpa_defaults;  // cluster-wide autoscaler settings
  control::AutoscalerOptions autoscaler;
  // false: only the API and the state, nothing runs (no reconciler, gateway or replicas), as
  // an API server without its controllers; for inspecting a state dir, and the API's own tests.
  bool controllers = true;
  // How long a clean stop waits for replicas to drain.
  std::chrono::milliseconds stop_timeout{std::chrono::seconds(60)};
};

class ControlPlane {
 public:
  // Opens the store and binds the API (nothing is served before Start).
  static StatusOr<std::unique_ptr<ControlPlane>> Create(ControlPlaneOptions options);
  ~ControlPlane();

  uint16_t api_port() const { return api_->port(); }
  // 0 without controllers.
  uint16_t gateway_port() const { return gateway_ ? gateway_->port() : 0; }
  store::Store& store() { return *store_; }

  // Starts serving the API on its own threads.
  void Start();
  // Stops serving and waits for the threads to finish.
  void Stop();

 private:
  ControlPlane() = default;

  ControlPlaneOptions options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<gateway::Gateway> gateway_;
  std::unique_ptr<storage::StorageInitializer> storage_;
  std::unique_ptr<control::Reconciler> reconciler_;
  std::unique_ptr<api::ApiServer> api_;
  std::thread api_thread_;
  std::thread gateway_thread_;
};

}  // namespace quiver
