#include "repository/model_repository.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "common/system.h"
#include "repository/model_config.h"

namespace quiver {

std::string_view ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kFailed: return "FAILED";
    case ModelState::kUnloading: return "UNLOADING";
    case ModelState::kUnloaded: return "UNLOADED";
  }
  return "UNKNOWN";
}

ModelRepository::ModelRepository(RuntimeRegistry* registry)
    : registry_(registry), snapshot_(std::make_shared<const Map>()) {}

ModelRepository::~ModelRepository() { UnloadAll(); }

void ModelRepository::Publish(std::shared_ptr<const ModelEntry> entry) {
  auto next = std::make_shared<Map>(*snapshot_.load());
  (*next)[entry->name] = std::move(entry);
  snapshot_.store(std::move(next));
}

std::mutex& ModelRepository::NameLock(const std::string& name) {
  std::lock_guard<std::mutex> lock(names_mu_);
  auto& m = name_locks_[name];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

void ModelRepository::Declare(const std::string& name, StatusOr<ModelConfig> config,
                              const std::filesystem::path& dir, bool load) {
  auto entry = std::make_shared<ModelEntry>();
  entry->name = name;
  entry->dir = dir;
  if (config.ok()) {
    entry->config = std::move(config).value();
    entry->version = entry->config.version;
    entry->state = load ? ModelState::kLoading : ModelState::kUnloaded;
  } else {
    entry->version = "1";
    entry->state = load ? ModelState::kFailed : ModelState::kUnloaded;
    entry->reason = config.status().message();
    if (load) spdlog::error("model '{}' FAILED: {}", name, entry->reason);
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  Publish(std::move(entry));
}

void ModelRepository::Rescan() {
  if (root_.empty()) return;
  std::error_code ec;
  std::vector<std::filesystem::path> dirs;
  for (const auto& e : std::filesystem::directory_iterator(root_, ec)) {
    if (e.is_directory() && e.path().filename().string()[0] != '.') dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& d : dirs) {
    std::string name = d.filename().string();
    if (Find(name) == nullptr) Declare(name, ReadModelConfig(d, name), d, /*load=*/false);
  }
  // Folders that disappeared are forgotten unless their model still serves.
  std::lock_guard<std::mutex> lock(write_mu_);
  auto next = std::make_shared<Map>(*snapshot_.load());
  bool changed = false;
  for (auto it = next->begin(); it != next->end();) {
    const ModelEntry& e = *it->second;
    if (!e.dir.empty() && e.dir.parent_path() == root_ && e.state != ModelState::kReady &&
        e.state != ModelState::kLoading && !std::filesystem::exists(e.dir, ec)) {
      it = next->erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  if (changed) snapshot_.store(std::move(next));
}

Status ModelRepository::Load(const std::string& name,
                             const std::optional<std::string>& override_yaml) {
  std::lock_guard<std::mutex> name_lock(NameLock(name));
  std::shared_ptr<const ModelEntry> current = Find(name);
  if (current == nullptr) {
    Rescan();
    current = Find(name);
  }
  if (current == nullptr) return NotFound("Model with name " + name + " does not exist.");
  auto start = std::chrono::steady_clock::now();
  // Folder models are re-read, so a fixed model file or config.yaml takes effect on reload.
  StatusOr<ModelConfig> read = current->config;
  if (override_yaml) {
    read = ParseModelConfigYaml(*override_yaml, current->dir, name);
    if (read.ok() && !current->dir.empty() && read->model_file.empty()) {
      ModelConfig c = *read;
      Status d = c.format == "echo" || c.format == "add_sub" || c.format == "sleep"
                     ? Status::Ok()
                     : DetectModelFile(current->dir, &c);
      read = d.ok() ? StatusOr<ModelConfig>(c) : StatusOr<ModelConfig>(d);
    }
    if (read.ok() && current->dir.empty() && read->format.empty()) {
      ModelConfig c = *read;
      c.format = current->config.format;
      read = c;
    }
  } else if (!current->dir.empty()) {
    read = ReadModelConfig(current->dir, name);
  }
  Status status = read.status();
  std::shared_ptr<ServableModel> servable;
  ModelConfig config = read.ok() ? *read : current->config;
  if (!config.batching.explicitly_set) config.batching = default_batching_;
  if (auto d = parameter_defaults_.find(name); d != parameter_defaults_.end()) {
    for (const auto& [key, value] : d->second) config.parameters.emplace(key, value);
  }
  if (status.ok()) {
    auto runtime = registry_->Get(config.format);
    if (!runtime.ok()) {
      status = runtime.status();
    } else {
      auto model = (*runtime)->Load(config);
      if (model.ok()) {
        // Metric children are resolved here, once; requests reach them through the model.
        std::shared_ptr<observe::ModelMetrics> model_metrics =
            metrics_ ? metrics_->ForModel(name, config.version, (*model)->HasExplainer())
                     : nullptr;
        servable = std::make_shared<ServableModel>(config, std::move(model).value(),
                                                   std::move(model_metrics));
      } else {
        status = model.status();
      }
    }
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto entry = std::make_shared<ModelEntry>();
  entry->name = name;
  entry->dir = current->dir;
  entry->version = config.version;
  entry->config = config;
  entry->load_seconds = seconds;
  if (status.ok()) {
    entry->state = ModelState::kReady;
    entry->servable = std::move(servable);
    spdlog::info("model '{}' READY (format {}, {} instance(s), loaded in {:.1f} ms)", name,
                 config.format, config.instance_count, seconds * 1e3);
  } else {
    entry->state = ModelState::kFailed;
    entry->reason = status.message();
    spdlog::error("model '{}' FAILED: {}", name, entry->reason);
  }
  // A failed reload leaves a serving model as it was (as Triton does); only a model that was
  // not serving becomes FAILED.
  bool keep_serving = !status.ok() && current->state == ModelState::kReady;
  if (!keep_serving) {
    std::lock_guard<std::mutex> lock(write_mu_);
    Publish(std::move(entry));
  } else {
    spdlog::warn("model '{}' keeps serving its loaded version", name);
  }
  // The previous version (if any) is released here, after its replacement serves; its queued
  // requests run first.
  if (!status.ok()) return Unavailable("failed to load '" + name + "': " + status.message());
  return Status::Ok();
}

Status ModelRepository::Unload(const std::string& name) {
  std::lock_guard<std::mutex> name_lock(NameLock(name));
  std::shared_ptr<const ModelEntry> current = Find(name);
  if (current == nullptr) return NotFound("Model with name " + name + " does not exist.");
  std::shared_ptr<ServableModel> servable = current->servable;
  auto unloading = std::make_shared<ModelEntry>(*current);
  unloading->servable = nullptr;
  unloading->state = ModelState::kUnloading;
  unloading->reason.clear();
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    Publish(unloading);
  }
  current.reset();
  // Requests that found the model before the switch hold it briefly; wait for them, then the
  // destructor runs whatever is queued and stops the instances, here rather than on an I/O
  // thread.
  if (servable) {
    while (servable.use_count() > 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    servable.reset();
  }
  auto unloaded = std::make_shared<ModelEntry>(*unloading);
  unloaded->state = ModelState::kUnloaded;
  std::error_code ec;
  bool folder_gone = !unloaded->dir.empty() && !std::filesystem::exists(unloaded->dir, ec);
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (folder_gone) {
      // Its folder left the repository: the model is forgotten, not listed as UNLOADED.
      auto next = std::make_shared<Map>(*snapshot_.load());
      next->erase(name);
      snapshot_.store(std::move(next));
    } else {
      Publish(std::move(unloaded));
    }
  }
  spdlog::info("model '{}' UNLOADED", name);
  return Status::Ok();
}

void ModelRepository::LoadAll() {
  std::vector<std::string> pending;
  for (const auto& e : List()) {
    if (e->state == ModelState::kLoading) pending.push_back(e->name);
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < pending.size(); i = next++) {
      (void)Load(pending[i]);  // the outcome is published and logged
    }
  };
  size_t n = std::min<size_t>(pending.size(), static_cast<size_t>(AvailableCpus()));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
}

std::shared_ptr<const ModelEntry> ModelRepository::Find(std::string_view name) const {
  auto snap = snapshot_.load();
  auto it = snap->find(name);
  if (it == snap->end()) return nullptr;
  return it->second;
}

std::vector<std::shared_ptr<const ModelEntry>> ModelRepository::List() const {
  auto snap = snapshot_.load();
  std::vector<std::shared_ptr<const ModelEntry>> out;
  out.reserve(snap->size());
  for (const auto& [k, v] : *snap) out.push_back(v);
  return out;
}

bool ModelRepository::Ready(bool strict) const {
  for (const auto& e : List()) {
    if (e->state == ModelState::kLoading) return false;
    // Models unloaded on purpose do not make the server unready.
    if (strict && e->state != ModelState::kReady && e->state != ModelState::kUnloaded) {
      return false;
    }
  }
  return true;
}

void ModelRepository::UnloadAll() {
  std::shared_ptr<const Map> old;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    old = snapshot_.exchange(std::make_shared<const Map>());
  }
  // Dropping the snapshot releases each ServableModel once its last in-flight user is done.
}

}  // namespace quiver
