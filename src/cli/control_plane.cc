#include "cli/control_plane.h"

#include <spdlog/spdlog.h>

#include "cli/state_dir.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string_view>
#include <vector>

namespace quiver {

namespace {

// The environment entries a replica inherits from the daemon: what programs need to run
// (a replica otherwise gets only its container's env, as in a pod).
std::vector<std::string> ReplicaBaseEnv() {
  std::vector<std::string> out;
  for (const char* name : {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "QUIVER_RUNTIME_DIR"}) {
    if (const char* v = std::getenv(name)) out.push_back(std::string(name) + "=" + v);
  }
  return out;
}

// KServe's storage initializer reads its S3 settings from the environment; so does ours.
std::map<std::string, std::string> StorageEnv() {
  std::map<std::string, std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.rfind("AWS_", 0) != 0 && entry.rfind("S3_", 0) != 0) continue;
    size_t eq = entry.find('=');
    if (eq != std::string_view::npos) {
      out.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
  }
  return out;
}

std::string SelfExecutable() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("quiver") : path.string();
}

}  // namespace

StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Create(ControlPlaneOptions options) {
  std::unique_ptr<ControlPlane> plane(new ControlPlane());
  plane->options_ = options;
  store::StoreOptions store_options;
  store_options.path = options.state_dir + "/" + kStateDbFile;
  QUIVER_ASSIGN_OR_RETURN(plane->store_, store::Store::Open(store_options));

  if (!options.controllers) {
    QUIVER_ASSIGN_OR_RETURN(plane->api_,
                            api::ApiServer::Create(plane->store_.get(), std::move(options.api)));
    return plane;
  }
  gateway::GatewayOptions gw;
  gw.server.host = options.gateway_host;
  gw.server.port = options.gateway_port;
  gw.domain = options.domain;
  QUIVER_ASSIGN_OR_RETURN(plane->gateway_, gateway::Gateway::Create(std::move(gw)));

  storage::StorageOptions so;
  so.cache_dir = std::filesystem::path(options.state_dir) / "models";
  so.env = StorageEnv();
  QUIVER_ASSIGN_OR_RETURN(plane->storage_, storage::StorageInitializer::Create(std::move(so)));

  control::ReconcilerOptions ro;
  ro.log_dir = std::filesystem::path(options.state_dir) / "logs";
  ro.quiver_binary = SelfExecutable();
  ro.domain = options.domain;
  ro.kpa_defaults = options.kpa_defaults;
  ro.autoscaler = options.autoscaler;
  ro.gateway_port = plane->gateway_->port();
  ro.base_env = ReplicaBaseEnv();
  QUIVER_ASSIGN_OR_RETURN(plane->reconciler_,
                          control::Reconciler::Create(std::move(ro), plane->store_.get(),
                                                      plane->storage_.get(),
                                                      plane->gateway_.get()));

  control::Reconciler* reconciler = plane->reconciler_.get();
  options.api.handler.on_change = [reconciler](const store::ResourceKey& key) {
    reconciler->Notify(key);
  };
  QUIVER_ASSIGN_OR_RETURN(plane->api_,
                          api::ApiServer::Create(plane->store_.get(), std::move(options.api)));
  return plane;
}

ControlPlane::~ControlPlane() { Stop(); }

void ControlPlane::Start() {
  if (gateway_) gateway_thread_ = std::thread([this] { gateway_->Run(); });
  if (reconciler_) reconciler_->Start();
  api_thread_ = std::thread([this] { api_->Run(); });
}

void ControlPlane::Stop() {
  if (api_thread_.joinable()) {
    api_->Shutdown();
    api_thread_.join();
    spdlog::info("control plane API stopped");
  }
  // The gateway first: requests in flight finish on replicas that still run, and nothing it
  // holds (graph routers, the activator's and drains' callbacks) calls into the reconciler
  // after this.
  if (gateway_thread_.joinable()) {
    gateway_->Shutdown();
    gateway_thread_.join();
    spdlog::info("gateway stopped");
  }
  if (reconciler_) {
    // A clean stop drains and stops the replicas; after kill -9 they keep running and the
    // next daemon adopts them.
    reconciler_->Shutdown(/*stop_replicas=*/true, options_.stop_timeout);
    reconciler_.reset();
  }
}

}  // namespace quiver
