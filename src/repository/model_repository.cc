#include "repository/model_repository.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "common/system.h"

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

void ModelRepository::Declare(const std::string& name, StatusOr<ModelConfig> config) {
  auto entry = std::make_shared<ModelEntry>();
  entry->name = name;
  if (config.ok()) {
    entry->config = std::move(config).value();
    entry->version = entry->config.version;
    entry->state = ModelState::kLoading;
  } else {
    entry->version = "1";
    entry->state = ModelState::kFailed;
    entry->reason = config.status().message();
    spdlog::error("model '{}' FAILED: {}", name, entry->reason);
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  Publish(std::move(entry));
}

Status ModelRepository::Load(const std::string& name) {
  std::shared_ptr<const ModelEntry> current = Find(name);
  if (current == nullptr) return NotFound("Model with name " + name + " does not exist.");
  if (current->state == ModelState::kFailed && current->servable == nullptr &&
      current->config.name.empty()) {
    return Unavailable("model '" + name + "' failed to load: " + current->reason);
  }
  ModelConfig config = current->config;
  auto start = std::chrono::steady_clock::now();
  Status status;
  std::shared_ptr<ServableModel> servable;
  auto runtime = registry_->Get(config.format);
  if (!runtime.ok()) {
    status = runtime.status();
  } else {
    auto model = (*runtime)->Load(config);
    if (model.ok()) {
      servable = std::make_shared<ServableModel>(config, std::move(model).value());
    } else {
      status = model.status();
    }
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto entry = std::make_shared<ModelEntry>();
  entry->name = name;
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
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    Publish(std::move(entry));
  }
  if (!status.ok()) return Unavailable("model '" + name + "' failed to load: " + status.message());
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
    if (strict && e->state != ModelState::kReady) return false;
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
