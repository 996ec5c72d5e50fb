// ModelRepository: the models a server knows, their lifecycle state (LOADING, READY, FAILED,
// UNLOADING, UNLOADED) and, when ready, their ServableModel. Readers take an immutable snapshot
// (one atomic load, no lock); writers replace it under a mutex. A model that fails to load is
// kept as FAILED with its reason; the others serve on. Thread-safe.
#pragma once

#include <atomic>
#include <filesystem>
#include <optional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "observe/model_metrics.h"
#include "repository/servable_model.h"
#include "runtime/runtime_registry.h"

namespace quiver {

enum class ModelState { kLoading, kReady, kFailed, kUnloading, kUnloaded };
std::string_view ModelStateName(ModelState state);

// What the repository knows of one model at one moment. Immutable once published.
struct ModelEntry {
  std::string name;
  std::filesystem::path dir;  // the model's folder; empty for built-ins
  std::string version;
  ModelState state = ModelState::kLoading;
  std::string reason;  // why it FAILED
  ModelConfig config;
  std::shared_ptr<ServableModel> servable;  // set when READY
  double load_seconds = 0;
};

class ModelRepository {
 public:
  explicit ModelRepository(RuntimeRegistry* registry);
  ~ModelRepository();

  // Declares a model (state LOADING, or UNLOADED when `load` is false). `dir` is its folder,
  // re-read on every load; empty for built-ins. A config that could not be read is declared
  // with its error and becomes FAILED at once. A later declaration of the same name wins.
  void Declare(const std::string& name, StatusOr<ModelConfig> config,
               const std::filesystem::path& dir = {}, bool load = true);
  // Parameters a model gets when its config.yaml does not set them (serve's KServe flags such
  // as --predictor_host), applied on every load. Set before loading.
  void SetParameterDefaults(const std::string& name, std::map<std::string, std::string> params) {
    parameter_defaults_[name] = std::move(params);
  }
  // The model repository folder (each sub-folder a model). Rescan declares new folders, not
  // loaded, so the repository index lists them.
  void SetRoot(const std::filesystem::path& root) { root_ = root; }
  // Batching for models whose own config does not choose it (from serve's flags). Set before
  // loading.
  void SetDefaultBatching(const BatchingConfig& batching) { default_batching_ = batching; }
  // Where loaded models get their metrics (null: none). Set before loading; it must outlive
  // the repository's models.
  void SetMetrics(observe::InferenceMetrics* metrics) { metrics_ = metrics; }
  void Rescan();
  // Loads every LOADING model, several at a time; returns when all are READY or FAILED.
  void LoadAll();
  // Loads (or reloads) one model now, re-reading its folder's config unless `override_yaml`
  // (config.yaml text) is given. NotFound for a model neither declared nor in the repository
  // folder; Unavailable with the reason when loading fails. Serving continues on the previous
  // version while a reload runs.
  Status Load(const std::string& name, const std::optional<std::string>& override_yaml = {});
  // Unloads a model: new requests get 503 at once, requests already running or queued finish,
  // then it is released. NotFound for an unknown model.
  Status Unload(const std::string& name);

  std::shared_ptr<const ModelEntry> Find(std::string_view name) const;
  std::vector<std::shared_ptr<const ModelEntry>> List() const;
  // True when no model is LOADING; with `strict`, also every model is READY.
  bool Ready(bool strict) const;

  // Releases every model: queued requests run, then instance threads stop.
  void UnloadAll();

 private:
  using Map = std::map<std::string, std::shared_ptr<const ModelEntry>, std::less<>>;
  void Publish(std::shared_ptr<const ModelEntry> entry);

  std::mutex& NameLock(const std::string& name);

  RuntimeRegistry* registry_;
  std::filesystem::path root_;
  BatchingConfig default_batching_;
  std::map<std::string, std::map<std::string, std::string>> parameter_defaults_;  // see above
  observe::InferenceMetrics* metrics_ = nullptr;
  std::mutex names_mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> name_locks_;  // guarded by names_mu_
  std::mutex write_mu_;  // serialises writers; readers never take it
  std::atomic<std::shared_ptr<const Map>> snapshot_;
};

}  // namespace quiver
