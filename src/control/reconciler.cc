#include "control/reconciler.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <system_error>

#include <spdlog/spdlog.h>

#include "control/process.h"
#include "control/scaling.h"
#include "control/traffic.h"
#include "store/process_identity.h"

namespace quiver::control {
namespace {

using Json = store::Json;
using spec::ComponentType;

constexpr ComponentType kComponentTypes[] = {ComponentType::kPredictor,
                                             ComponentType::kTransformer,
                                             ComponentType::kExplainer};

gateway::Component GatewayComponent(ComponentType type) {
  switch (type) {
    case ComponentType::kPredictor: return gateway::Component::kPredictor;
    case ComponentType::kTransformer: return gateway::Component::kTransformer;
    case ComponentType::kExplainer: return gateway::Component::kExplainer;
  }
  return gateway::Component::kPredictor;
}

// "Predictor" for condition types ("PredictorReady").
std::string Capitalized(std::string_view name) {
  std::string out(name);
  if (!out.empty()) out[0] = static_cast<char>(out[0] - 'a' + 'A');
  return out;
}

const spec::ComponentSpec* ComponentOf(const spec::InferenceService& isvc, ComponentType type) {
  switch (type) {
    case ComponentType::kPredictor: return &isvc.predictor;
    case ComponentType::kTransformer: return isvc.transformer ? &*isvc.transformer : nullptr;
    case ComponentType::kExplainer: return isvc.explainer ? &*isvc.explainer : nullptr;
  }
  return nullptr;
}

std::string ReplicaId(const std::string& ns, const std::string& isvc, const std::string& revision,
                      int64_t index) {
  return ns + "/" + isvc + "/" + revision + "/" + std::to_string(index);
}

// The parts of a replica id; false when it is not one of ours.
struct ParsedId {
  std::string ns, isvc, revision, component;
  int64_t index = 0;
};
bool ParseReplicaId(const std::string& id, ParsedId* out) {
  size_t a = id.find('/');
  size_t b = a == std::string::npos ? a : id.find('/', a + 1);
  size_t c = b == std::string::npos ? b : id.find('/', b + 1);
  if (c == std::string::npos) return false;
  out->ns = id.substr(0, a);
  out->isvc = id.substr(a + 1, b - a - 1);
  out->revision = id.substr(b + 1, c - b - 1);
  out->index = std::strtoll(id.c_str() + c + 1, nullptr, 10);
  // "{isvc}-{component}-{00001}"
  if (out->revision.size() <= out->isvc.size() + 7) return false;
  std::string rest = out->revision.substr(out->isvc.size() + 1);
  size_t dash = rest.rfind('-');
  if (dash == std::string::npos) return false;
  out->component = rest.substr(0, dash);
  return true;
}

store::ResourceKey IsvcKey(const std::string& ns, const std::string& name) {
  return store::ResourceKey{"InferenceService", ns, name};
}

// Status equality for "did anything change": transition times are left out.
Json WithoutTimes(Json status) {
  if (status.contains("conditions") && status["conditions"].is_array()) {
    for (auto& c : status["conditions"]) c.erase("lastTransitionTime");
  }
  if (status.contains("modelStatus") && status["modelStatus"].contains("lastFailureInfo")) {
    status["modelStatus"]["lastFailureInfo"].erase("time");
  }
  return status;
}

// Whether `args` already gives `flag` (as `--flag` or `--flag=value`).
bool HasFlag(const std::vector<std::string>& args, std::string_view flag) {
  for (const auto& a : args) {
    if (a == flag || (a.size() > flag.size() && a.compare(0, flag.size(), flag) == 0 &&
                      a[flag.size()] == '=')) {
      return true;
    }
  }
  return false;
}

bool IsReady(const Json& status) {
  if (!status.contains("conditions") || !status["conditions"].is_array()) return false;
  for (const auto& c : status["conditions"]) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

// Knative's tag URL: {tag}-{isvc}-{component}.{namespace}.{domain}.
std::string TagUrl(const std::string& tag, const std::string& name, const std::string& component,
                   const std::string& ns, const std::string& domain) {
  return "http://" + tag + "-" + name + "-" + component + "." + ns + "." + domain;
}

// A revision's own component spec (an older revision runs, scales and is routed as it was, not
// as the latest spec says); the latest spec when the stored one no longer reads.
spec::ComponentSpec RevisionComponent(const spec::InferenceService& isvc, ComponentType type,
                                      const spec::ComponentSpec& latest,
                                      const store::Revision& revision) {
  const std::string type_name(spec::ComponentTypeName(type));
  Json spec_json = Json::object();
  if (type == ComponentType::kPredictor) {
    spec_json["predictor"] = revision.spec;
  } else {
    // A predictor is required to view the document; the component of interest goes beside it.
    spec_json["predictor"] =
        Json{{"containers", Json::array({Json{{"name", "kserve-container"},
                                              {"image", "none"},
                                              {"command", Json::array({"true"})}}})}};
    spec_json[type_name] = revision.spec;
  }
  auto view = spec::InferenceServiceFromJson(
      Json{{"apiVersion", "serving.kserve.io/v1beta1"},
           {"kind", "InferenceService"},
           {"metadata",
            {{"name", isvc.metadata.name}, {"namespace", isvc.metadata.namespace_name}}},
           {"spec", spec_json}});
  if (view.ok()) {
    const spec::ComponentSpec* c = ComponentOf(*view, type);
    if (c != nullptr) return *c;
  } else {
    spdlog::warn("revision {} no longer reads as a component ({}); using the latest spec",
                 revision.name, view.status().ToString());
  }
  return latest;
}

// A Kubernetes-style condition; its lastTransitionTime is kept from `old_status` while the
// condition's status holds, else `now`.
Json MakeCondition(const std::string& type, bool ok, const std::string& reason,
                   const std::string& message, const Json& old_status, const std::string& now) {
  Json c = {{"type", type}, {"status", ok ? "True" : "False"}};
  if (!ok && !reason.empty()) c["reason"] = reason;
  if (!ok && !message.empty()) c["message"] = message;
  std::string when = now;
  if (old_status.contains("conditions") && old_status["conditions"].is_array()) {
    for (const auto& o : old_status["conditions"]) {
      if (o.value("type", "") == type && o.value("status", "") == c["status"] &&
          o.contains("lastTransitionTime")) {
        when = o["lastTransitionTime"].get<std::string>();
      }
    }
  }
  c["lastTransitionTime"] = when;
  return c;
}

bool HasFinalizer(const Json& doc) {
  const Json& meta = doc["metadata"];
  if (!meta.contains("finalizers") || !meta["finalizers"].is_array()) return false;
  for (const auto& f : meta["finalizers"]) {
    if (f.is_string() && f.get<std::string>() == kFinalizer) return true;
  }
  return false;
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

StatusOr<std::unique_ptr<Reconciler>> Reconciler::Create(ReconcilerOptions options,
                                                         store::Store* store,
                                                         storage::StorageInitializer* storage,
                                                         gateway::Gateway* gateway) {
  std::unique_ptr<Reconciler> r(new Reconciler(std::move(options), store, storage, gateway));
  Supervisor::Options sup;
  Reconciler* self = r.get();
  sup.on_event = [self](const ReplicaEvent& event) { self->OnReplicaEvent(event); };
  sup.wall_now = r->options_.wall_now;
  QUIVER_ASSIGN_OR_RETURN(r->supervisor_, Supervisor::Create(std::move(sup)));
  r->autoscaler_ = std::make_unique<Autoscaler>(
      r->options_.autoscaler, [gateway] { return gateway->Snapshot(); },
      [self](const gateway::RevisionRef& ref) { self->Enqueue(IsvcKey(ref.namespace_name, ref.name)); });
  // The activator's poke: a request held for a revision without a ready replica.
  gateway->SetDemandCallback(
      [self](const gateway::RevisionRef& ref) { self->autoscaler_->Demand(ref); });
  // Quiver's runtimes, unless the user stored one of the same name (theirs wins).
  for (const Json& doc : spec::BuiltinRuntimeDocs()) {
    store::ResourceKey key = store::KeyOf(doc);
    auto existing = store->Get(key);
    if (existing.ok()) continue;
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    auto created = store->Create(doc);
    if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
      return created.status().WithPrefix("storing built-in runtime " + key.name);
    }
  }
  return r;
}

Reconciler::Reconciler(ReconcilerOptions options, store::Store* store,
                       storage::StorageInitializer* storage, gateway::Gateway* gateway)
    : options_(std::move(options)),
      store_(store),
      storage_(storage),
      gateway_(gateway),
      ports_(options_.replica_host) {
  services_->gateway_port = options_.gateway_port;
}

Reconciler::~Reconciler() { Shutdown(false, std::chrono::milliseconds(0)); }

void Reconciler::Start() {
  // Ports recorded by a previous daemon stay taken: their replicas are adopted or restarted on
  // the same ports.
  auto isvcs = store_->List("InferenceService", "");
  if (isvcs.ok()) {
    for (const Json& doc : isvcs->items) {
      store::ResourceKey key = store::KeyOf(doc);
      for (ComponentType type : kComponentTypes) {
        store::ComponentKey ck{key.ns, key.name, std::string(spec::ComponentTypeName(type))};
        auto replicas = store_->ListReplicas(ck);
        if (!replicas.ok()) continue;
        for (const auto& r : *replicas) {
          for (int port : r.ports) {
            if (port > 0) (void)ports_.Reserve(port);
          }
        }
      }
      Enqueue(key);
    }
  } else {
    spdlog::error("reconciler: listing InferenceServices failed: {}", isvcs.status().ToString());
  }
  auto graphs = store_->List("InferenceGraph", "");
  if (graphs.ok()) {
    for (const Json& doc : graphs->items) Enqueue(store::KeyOf(doc));
  }
  thread_ = std::thread([this] { Run(); });
  autoscaler_->Start();
  for (int i = 0; i < std::max(1, options_.download_threads); ++i) {
    download_threads_.emplace_back([this] {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        wake_.wait(lock, [this] { return quit_ || !download_jobs_.empty(); });
        if (quit_) return;
        auto job = std::move(download_jobs_.front());
        download_jobs_.pop_front();
        lock.unlock();
        job();
        lock.lock();
      }
    });
  }
}

void Reconciler::Shutdown(bool stop_replicas, std::chrono::milliseconds timeout) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (quit_ && !thread_.joinable()) return;
    quit_ = true;
  }
  cancel_downloads_ = true;
  wake_.notify_all();
  if (autoscaler_) autoscaler_->Stop();
  if (thread_.joinable()) thread_.join();
  for (auto& t : router_stoppers_) t.join();
  router_stoppers_.clear();
  for (auto& t : download_threads_) t.join();
  download_threads_.clear();
  if (stop_replicas && supervisor_) {
    Status s = supervisor_->StopAllAndWait(std::nullopt, timeout);
    if (!s.ok()) spdlog::warn("stopping replicas: {}", s.ToString());
  }
}

void Reconciler::Notify(const store::ResourceKey& key) { Enqueue(key); }

void Reconciler::Enqueue(const store::ResourceKey& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queued_.insert(key.ToString()).second) return;
    queue_.push_back(key);
  }
  wake_.notify_all();
}

void Reconciler::EnqueueAfter(const store::ResourceKey& key, std::chrono::milliseconds delay) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    timers_.emplace(std::chrono::steady_clock::now() + delay, key);
  }
  wake_.notify_all();
}

void Reconciler::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (quit_) return;
    auto now = std::chrono::steady_clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      store::ResourceKey key = timers_.begin()->second;
      timers_.erase(timers_.begin());
      if (queued_.insert(key.ToString()).second) queue_.push_back(key);
    }
    if (queue_.empty()) {
      if (timers_.empty()) {
        wake_.wait(lock);
      } else {
        wake_.wait_until(lock, timers_.begin()->first);
      }
      continue;
    }
    store::ResourceKey key = queue_.front();
    queue_.pop_front();
    queued_.erase(key.ToString());
    lock.unlock();
    ReconcileKey(key);
    lock.lock();
  }
}

void Reconciler::ReconcileKey(const store::ResourceKey& key) {
  if (key.kind == "ServingRuntime" || key.kind == "ClusterServingRuntime") {
    // Runtime selection may now succeed (or pick another runtime for new revisions).
    auto isvcs = store_->List("InferenceService", key.kind == "ServingRuntime" ? key.ns : "");
    if (isvcs.ok()) {
      for (const Json& doc : isvcs->items) Enqueue(store::KeyOf(doc));
    }
    return;
  }
  if (key.kind == "InferenceGraph") {
    auto graph = store_->Get(key);
    if (!graph.ok()) {
      if (graph.status().code() == StatusCode::kNotFound) {
        RemoveGraph(key.ns + "/" + key.name);
        return;
      }
      EnqueueAfter(key, options_.retry_initial);
      return;
    }
    Status s = ReconcileGraph(*graph);
    if (!s.ok()) {
      spdlog::warn("reconciling {}: {}", key.ToString(), s.ToString());
      EnqueueAfter(key, options_.retry_initial);
    }
    return;
  }
  if (key.kind != "InferenceService") return;  // TrainedModels are stored only
  auto doc = store_->Get(key);
  if (!doc.ok()) {
    if (doc.status().code() == StatusCode::kNotFound) {
      // Deleted without our finalizer (or already finalized): nothing may keep running.
      for (ComponentType type : kComponentTypes) {
        RetireRevisions({key.ns, key.name, std::string(spec::ComponentTypeName(type))}, {}, true);
      }
      {
        std::lock_guard<std::mutex> lock(services_->mu);
        services_->v1.erase(key.ns + "/" + key.name);
      }
      if (routes_.erase(key.ns + "/" + key.name) > 0) PublishRoutes();
      return;
    }
    spdlog::error("reconciling {}: {}", key.ToString(), doc.status().ToString());
    EnqueueAfter(key, options_.retry_initial);
    return;
  }
  Status s = ReconcileService(std::move(*doc));
  if (!s.ok()) {
    spdlog::warn("reconciling {}: {}", key.ToString(), s.ToString());
    EnqueueAfter(key, options_.retry_initial);
  }
}

Status Reconciler::FinalizeDeletion(const Json& doc) {
  store::ResourceKey key = store::KeyOf(doc);
  for (ComponentType type : kComponentTypes) {
    RetireRevisions({key.ns, key.name, std::string(spec::ComponentTypeName(type))}, {}, true);
  }
  autoscaler_->Retain(key.ns + "/" + key.name + "/", {});
  {
    std::lock_guard<std::mutex> lock(services_->mu);
    services_->v1.erase(key.ns + "/" + key.name);
  }
  if (routes_.erase(key.ns + "/" + key.name) > 0) PublishRoutes();
  RecordEvent(key, "Normal", "Deleted", "replicas stopped and routes removed");
  if (!HasFinalizer(doc)) return Status::Ok();
  Json updated = doc;
  Json kept = Json::array();
  for (const auto& f : doc["metadata"]["finalizers"]) {
    if (!(f.is_string() && f.get<std::string>() == kFinalizer)) kept.push_back(f);
  }
  updated["metadata"]["finalizers"] = kept;
  auto replaced = store_->Replace(updated);
  if (!replaced.ok() && replaced.status().code() != StatusCode::kNotFound) {
    return replaced.status();
  }
  return Status::Ok();
}

Status Reconciler::ReconcileService(Json doc) {
  store::ResourceKey key = store::KeyOf(doc);
  if (doc["metadata"].contains("deletionTimestamp")) return FinalizeDeletion(doc);
  if (!HasFinalizer(doc)) {
    Json updated = doc;
    if (!updated["metadata"].contains("finalizers") ||
        !updated["metadata"]["finalizers"].is_array()) {
      updated["metadata"]["finalizers"] = Json::array();
    }
    updated["metadata"]["finalizers"].push_back(std::string(kFinalizer));
    auto replaced = store_->Replace(updated);  // carries resourceVersion: a concurrent apply wins
    if (!replaced.ok()) {
      if (replaced.status().code() == StatusCode::kFailedPrecondition) {
        Enqueue(key);
        return Status::Ok();
      }
      return replaced.status();
    }
    doc = std::move(*replaced);
  }
  // Replicas drained earlier and gone since need no more bookkeeping.
  for (auto it = draining_.begin(); it != draining_.end();) {
    auto st = supervisor_->GetStatus(*it);
    if (!st.ok() || st->state == ReplicaState::kStopped) {
      it = draining_.erase(it);
    } else {
      ++it;
    }
  }
  const Json old_status = doc.contains("status") && doc["status"].is_object() ? doc["status"]
                                                                                : Json::object();
  Json status = Json::object();
  if (doc["metadata"].contains("generation")) {
    status["observedGeneration"] = doc["metadata"]["generation"];
  }
  const std::string& ns = key.ns;
  const std::string& name = key.name;
  status["url"] = "http://" + name + "." + ns + "." + options_.domain;
  status["address"] = {{"url", "http://127.0.0.1:" + std::to_string(options_.gateway_port) +
                                   "/serving/" + ns + "/" + name}};
  auto isvc = spec::InferenceServiceFromJson(doc);
  Json conditions = Json::array();
  auto condition = [&](const std::string& type, bool ok, const std::string& reason,
                       const std::string& message) {
    conditions.push_back(MakeCondition(type, ok, reason, message, old_status, Now()));
  };
  if (!isvc.ok()) {
    condition("Ready", false, "InvalidSpec", isvc.status().message());
    status["conditions"] = conditions;
    status["modelStatus"] = {{"transitionStatus", "InvalidSpec"},
                             {"lastFailureInfo",
                              {{"reason", "InvalidSpec"},
                               {"message", isvc.status().message()},
                               {"time", Now()}}}};
    if (WithoutTimes(status) != WithoutTimes(old_status)) {
      QUIVER_RETURN_IF_ERROR(store_->UpdateStatus(key, status).status());
    }
    return Status::Ok();
  }

  gateway::ServiceRoute route;
  route.namespace_name = ns;
  route.name = name;
  Json components = Json::object();
  bool all_ready = true;
  std::optional<ComponentOutcome> predictor_outcome;
  std::map<std::string, std::set<std::string>> outcomes;  // component → revisions kept
  std::vector<ComponentOutcome::Drain> drains;
  for (ComponentType type : kComponentTypes) {
    const spec::ComponentSpec* comp = ComponentOf(*isvc, type);
    std::string type_name(spec::ComponentTypeName(type));
    if (comp == nullptr) {
      RetireRevisions({ns, name, type_name}, {}, true);
      continue;
    }
    ComponentOutcome outcome =
        ReconcileComponent(*isvc, type, *comp, doc["spec"][type_name], old_status,
                           ComponentOf(*isvc, ComponentType::kPredictor));
    route.component(GatewayComponent(type)) = outcome.traffic;
    outcomes[type_name] = outcome.keep;
    drains.insert(drains.end(), outcome.drains.begin(), outcome.drains.end());
    Json c = Json::object();
    if (!outcome.latest_created.empty()) c["latestCreatedRevision"] = outcome.latest_created;
    if (!outcome.latest_ready.empty()) c["latestReadyRevision"] = outcome.latest_ready;
    if (!outcome.rolled_out.empty()) c["latestRolledoutRevision"] = outcome.rolled_out;
    if (!outcome.previous_rolled_out.empty()) {
      c["previousRolledoutRevision"] = outcome.previous_rolled_out;
    }
    c["traffic"] = outcome.status_traffic;
    c["url"] = "http://" + name + "-" + type_name + "." + ns + "." + options_.domain;
    components[type_name] = c;
    condition(Capitalized(type_name) + "Ready", outcome.ready, outcome.reason, outcome.message);
    all_ready = all_ready && outcome.ready;
    if (type == ComponentType::kPredictor) predictor_outcome = outcome;
  }
  routes_[ns + "/" + name] = route;
  {
    std::lock_guard<std::mutex> lock(services_->mu);
    services_->v1[ns + "/" + name] = isvc->predictor.protocol_version == spec::Protocol::kV1;
  }
  Status published = Status::Ok();
  published = gateway_->SetRouteTable(BuildRouteTable());
  if (!published.ok()) {
    routes_.erase(ns + "/" + name);
    PublishRoutes();
  }
  StartDrains(drains);
  // Only now that the gateway routes to the kept revisions are the others drained and stopped.
  for (ComponentType type : kComponentTypes) {
    const std::string type_name(spec::ComponentTypeName(type));
    auto it = outcomes.find(type_name);
    if (it != outcomes.end()) RetireRevisions({ns, name, type_name}, it->second, false);
  }
  condition("IngressReady", published.ok(), "RouteRejected", published.message());
  condition("Ready", all_ready && published.ok(), all_ready ? "RouteRejected" : "ComponentsNotReady",
            all_ready ? published.message() : "not every component has a ready replica");
  status["conditions"] = conditions;
  status["components"] = components;
  const ComponentOutcome& p = *predictor_outcome;
  Json model_status = Json::object();
  std::string transition = "InProgress";
  if (p.ready && p.latest_ready == p.latest_created) transition = "UpToDate";
  if (p.model_state == "FailedToLoad") transition = "BlockedByFailedLoad";
  if (p.reason == "RuntimeSelectionFailed" || p.reason == "InvalidRuntime") {
    transition = "InvalidSpec";
  }
  model_status["transitionStatus"] = transition;
  model_status["states"] = {{"activeModelState", p.ready ? "Loaded" : "Pending"},
                            {"targetModelState", p.model_state}};
  model_status["copies"] = {{"failedCopies", p.failed_copies}, {"totalCopies", p.total_copies}};
  if (p.last_failure) {
    model_status["lastFailureInfo"] = {
        {"reason", p.model_state == "FailedToLoad" ? "ModelLoadFailed" : "RuntimeUnhealthy"},
        {"message", p.last_failure->reason + (p.last_failure->log_tail.empty()
                                                  ? std::string()
                                                  : "\n" + p.last_failure->log_tail)},
        {"time", FormatTime(p.last_failure->time)}};
  } else if (!p.ready && !p.message.empty() && p.model_state == "FailedToLoad") {
    model_status["lastFailureInfo"] = {
        {"reason", p.reason}, {"message", p.message}, {"time", Now()}};
  }
  status["modelStatus"] = model_status;
  if (WithoutTimes(status) != WithoutTimes(old_status)) {
    if (all_ready && !IsReady(old_status)) {
      RecordEvent(key, "Normal", "InferenceServiceReady", "every component is ready");
    }
    QUIVER_RETURN_IF_ERROR(store_->UpdateStatus(key, status).status());
  }
  return Status::Ok();
}

Reconciler::ComponentOutcome Reconciler::ReconcileComponent(
    const spec::InferenceService& isvc, ComponentType type, const spec::ComponentSpec& comp,
    const Json& component_json, const Json& old_status, const spec::ComponentSpec* predictor) {
  ComponentOutcome out;
  const std::string& ns = isvc.metadata.namespace_name;
  const std::string& name = isvc.metadata.name;
  std::string type_name(spec::ComponentTypeName(type));
  store::ComponentKey ck{ns, name, type_name};
  store::ResourceKey key = IsvcKey(ns, name);
  auto fail = [&](std::string reason, std::string message, std::string model_state) {
    out.ready = false;
    out.reason = std::move(reason);
    out.message = std::move(message);
    out.model_state = std::move(model_state);
  };
  auto revisions = store_->ListRevisions(ck);
  if (!revisions.ok()) {
    fail("StoreError", revisions.status().message(), "Pending");
    EnqueueAfter(key, options_.retry_initial);
    return out;
  }
  if (revisions->empty() || revisions->back().fingerprint != comp.fingerprint) {
    auto created = store_->CreateRevision(ck, comp.fingerprint, component_json);
    if (!created.ok()) {
      fail("StoreError", created.status().message(), "Pending");
      EnqueueAfter(key, options_.retry_initial);
      return out;
    }
    RecordEvent(key, "Normal", "RevisionCreated",
                type_name + " revision " + created->name + " created");
    revisions->push_back(*created);
  }
  const store::Revision& latest = revisions->back();
  out.latest_created = latest.name;
  Json old = Json::object();
  if (old_status.contains("components") && old_status["components"].contains(type_name)) {
    old = old_status["components"][type_name];
  }
  auto find_revision = [&](const std::string& rev) -> const store::Revision* {
    for (const auto& r : *revisions) {
      if (r.name == rev) return &r;
    }
    return nullptr;
  };
  std::string rolled_out = old.value("latestRolledoutRevision", "");
  std::string previous = old.value("previousRolledoutRevision", "");
  if (!rolled_out.empty() && find_revision(rolled_out) == nullptr) rolled_out.clear();
  if (!previous.empty() && find_revision(previous) == nullptr) previous.clear();

  auto scaling = ScalingOf(isvc, type, comp, options_.kpa_defaults);
  if (!scaling.ok()) {
    // Admission rejects these; a document stored before that check still gets a clear reason.
    // Its revisions scale on the component's fields alone meanwhile.
    RecordEvent(key, "Warning", "InvalidAutoscaling", scaling.status().message());
    scaling = ScalingOf(isvc, type, comp, options_.kpa_defaults, /*use_annotations=*/false);
  }
  autoscale::KpaConfig kpa = options_.kpa_defaults;
  kpa.min_scale = std::max(comp.min_replicas, 0);
  kpa.max_scale = comp.max_replicas.value_or(0);
  std::string kpa_key = "fields";
  if (scaling.ok()) {
    kpa = scaling->config;
    kpa_key = scaling->key;
  }

  // The model of the latest revision.
  std::optional<StatusOr<std::string>> model_dir = StatusOr<std::string>(std::string());
  std::string download_progress;
  if (!comp.storage_uri.empty()) {
    if (latest.state.contains("model_dir") &&
        std::filesystem::exists(latest.state["model_dir"].get<std::string>())) {
      model_dir = StatusOr<std::string>(latest.state["model_dir"].get<std::string>());
    } else {
      std::string progress;
      model_dir = ModelDir(key, latest.name, comp.storage_uri, &progress);
      if (!model_dir) {
        // Refresh the status message while the download runs.
        download_progress = progress;
        EnqueueAfter(key, std::chrono::seconds(1));
      }
      if (model_dir && model_dir->ok()) {
        Json state = latest.state;
        state["model_dir"] = **model_dir;
        (void)store_->UpdateRevisionState(ck, latest.name, state);
      }
    }
  }

  // A revision is ready once one of its replicas has been (Knative's revision Ready): from then
  // on it may take traffic, even while scaled to zero (the gateway holds its requests).
  std::map<std::string, bool> ever_ready;
  for (auto& r : *revisions) {
    bool ready = r.state.value("ready", false);
    if (!ready && CountReplicas(ns, name, r.name).ready > 0) {
      ready = true;
      Json state = r.state;
      state["ready"] = true;
      (void)store_->UpdateRevisionState(ck, r.name, state);
      r.state = state;
    }
    ever_ready[r.name] = ready;
  }
  std::string latest_ready;
  for (auto it = revisions->rbegin(); it != revisions->rend(); ++it) {
    if (ever_ready[it->name]) {
      latest_ready = it->name;
      break;
    }
  }
  auto tag_annotation = isvc.metadata.annotations.find("serving.kserve.io/enable-tag-routing");
  const bool tag_routing = tag_annotation != isvc.metadata.annotations.end() &&
                           tag_annotation->second == "true";
  RolloutPlan plan = PlanRollout({latest_ready, latest.name, rolled_out, previous,
                                  comp.canary_traffic_percent, tag_routing});
  if (plan.rolled_out != rolled_out && !plan.rolled_out.empty()) {
    RecordEvent(key, "Normal", "RolledOut", type_name + " traffic moved to " + plan.rolled_out);
  }

  // Which revisions run: those with traffic or a tag, and the latest until it is ready.
  std::map<std::string, bool> run;  // revision → routed
  for (const auto& t : plan.traffic) {
    if (t.percent > 0 || !t.tag.empty()) run[t.revision] = true;
  }
  if (!ever_ready[latest.name]) run.emplace(latest.name, true);

  std::map<std::string, std::vector<gateway::Endpoint>> endpoints;
  bool latest_failed = false;
  for (const auto& [rev_name, routed] : run) {
    const store::Revision* rev = find_revision(rev_name);
    if (rev == nullptr) continue;
    std::string dir;
    if (rev->name == latest.name) {
      if (!model_dir) {
        fail("StorageInitializing", "downloading " + comp.storage_uri +
                                        (download_progress.empty() ? "" : ": " + download_progress),
             "Loading");
        latest_failed = true;
        continue;
      }
      if (!model_dir->ok()) {
        fail("StorageInitializerFailed", model_dir->status().message(), "FailedToLoad");
        latest_failed = true;
        continue;
      }
      dir = **model_dir;
    } else {
      dir = rev->state.value("model_dir", "");
    }
    gateway::RevisionRef ref{ns, name, GatewayComponent(type), rev->name};
    ReplicaCounts counts = CountReplicas(ns, name, rev->name);
    autoscale::KpaConfig rev_kpa = kpa;
    std::string rev_key = kpa_key;
    if (rev->name != latest.name) {
      // An older revision (the canary's stable side, a rollback) scales by its own spec.
      auto own = ScalingOf(isvc, type, RevisionComponent(isvc, type, comp, *rev),
                           options_.kpa_defaults);
      if (own.ok()) {
        rev_kpa = own->config;
        rev_key = own->key;
      }
    }
    // Initial scale is for a new revision: one that has been ready (a daemon restart, or a
    // revision routed again after a rollback) starts from what it has, possibly zero.
    if (ever_ready[rev->name]) rev_kpa.initial_scale = 0;
    int wanted =
        autoscaler_->Replicas({ref, rev_kpa, rev_key, routed, counts.current, counts.ready});
    ComponentOutcome scratch;
    ComponentOutcome* into = rev->name == latest.name ? &out : &scratch;
    auto ready = EnsureReplicas(isvc, type, comp, *rev, dir, wanted, predictor, into);
    if (ready.ok()) endpoints[rev->name] = std::move(*ready);
    if (into != &out) out.drains.insert(out.drains.end(), into->drains.begin(), into->drains.end());
    if (rev->name == latest.name && !into->reason.empty()) latest_failed = true;
  }
  std::set<std::string> kept;
  for (const auto& [rev_name, routed] : run) kept.insert(rev_name);
  std::set<std::string> kept_keys;
  for (const auto& r : kept) {
    kept_keys.insert(Autoscaler::Key({ns, name, GatewayComponent(type), r}));
  }
  autoscaler_->Retain(ns + "/" + name + "/" + type_name + "/", kept_keys);

  auto revision_route = [&](const std::string& rev, int percent) {
    gateway::RevisionRoute r;
    r.name = rev;
    r.percent = percent;
    r.endpoints = endpoints[rev];
    const store::Revision* stored = find_revision(rev);
    const spec::ComponentSpec own =
        stored == nullptr ? comp : RevisionComponent(isvc, type, comp, *stored);
    r.container_concurrency = own.container_concurrency;
    if (own.timeout_seconds) r.timeout = std::chrono::milliseconds(*own.timeout_seconds * 1000);
    r.scale_from_zero = ever_ready[rev];
    return r;
  };
  if (plan.traffic.empty()) {
    // Nothing has been ready yet: the latest revision is listed without replicas (503 at once).
    out.traffic.push_back(revision_route(latest.name, 100));
  }
  for (const auto& t : plan.traffic) {
    // Two targets on one revision (a canary before anything else was rolled out) are one
    // route with both tags.
    gateway::RevisionRoute* same = nullptr;
    for (auto& r : out.traffic) {
      if (r.name == t.revision) same = &r;
    }
    if (same == nullptr) {
      out.traffic.push_back(revision_route(t.revision, 0));
      same = &out.traffic.back();
    }
    same->percent += t.percent;
    if (!t.tag.empty()) same->tags.push_back(t.tag);
    Json entry = {{"revisionName", t.revision},
                  {"percent", t.percent},
                  {"latestRevision", t.latest_revision}};
    if (!t.tag.empty()) {
      entry["tag"] = t.tag;
      entry["url"] = TagUrl(t.tag, name, type_name, ns, options_.domain);
    }
    out.status_traffic.push_back(std::move(entry));
  }

  out.latest_ready = latest_ready;
  if (ever_ready[latest.name] && !latest_failed) {
    out.ready = true;
    out.reason.clear();
    out.message.clear();
    out.model_state = "Loaded";
  } else if (out.reason.empty()) {
    fail("RevisionNotReady", "no replica of " + latest.name + " is ready yet", "Loading");
  }
  out.rolled_out = plan.rolled_out;
  out.previous_rolled_out = plan.previous;
  out.keep = std::move(kept);
  return out;
}

Reconciler::ReplicaCounts Reconciler::CountReplicas(const std::string& ns,
                                                    const std::string& name,
                                                    const std::string& revision) {
  ReplicaCounts counts;
  const std::string prefix = ns + "/" + name + "/" + revision + "/";
  for (const ReplicaStatus& r : supervisor_->List()) {
    if (r.id.compare(0, prefix.size(), prefix) != 0) continue;
    if (r.state == ReplicaState::kDraining || r.state == ReplicaState::kStopped) continue;
    if (draining_.count(r.id) > 0) continue;
    ++counts.current;
    if (r.state == ReplicaState::kReady) ++counts.ready;
  }
  return counts;
}

void Reconciler::StartDrains(const std::vector<ComponentOutcome::Drain>& drains) {
  for (const auto& d : drains) {
    if (!draining_.insert(d.replica_id).second) continue;
    Supervisor* supervisor = supervisor_.get();
    std::string id = d.replica_id;
    auto grace = options_.stop_grace;
    Status s = gateway_->DrainEndpoint(d.ref, d.endpoint, [supervisor, id, grace] {
      // Idle in the gateway: nothing is sent to it any more, so it can stop.
      Status stopped = supervisor->Stop(id, grace);
      if (!stopped.ok()) spdlog::warn("stopping drained replica {}: {}", id, stopped.ToString());
    });
    if (!s.ok()) {
      // Not routed (the route was rejected): stop it directly.
      spdlog::warn("draining replica {}: {}; stopping it", id, s.ToString());
      (void)supervisor_->Stop(id, grace);
    } else {
      spdlog::info("draining replica {} ({})", id, d.endpoint.ToString());
    }
  }
}

void Reconciler::RetireRevisions(const store::ComponentKey& ck, const std::set<std::string>& keep,
                                 bool drop_revisions) {
  const std::string prefix = ck.ns + "/" + ck.isvc + "/";
  for (const ReplicaStatus& r : supervisor_->List()) {
    ParsedId p;
    if (r.id.compare(0, prefix.size(), prefix) != 0 || !ParseReplicaId(r.id, &p)) continue;
    if (p.component != ck.component || keep.count(p.revision) > 0) continue;
    if (r.state == ReplicaState::kDraining || r.state == ReplicaState::kStopped) continue;
    Status s = supervisor_->Stop(r.id, options_.stop_grace);
    if (!s.ok()) spdlog::warn("stopping replica {}: {}", r.id, s.ToString());
  }
  // Replicas a previous daemon left behind for revisions no longer wanted.
  auto rows = store_->ListReplicas(ck);
  if (rows.ok()) {
    for (const auto& row : *rows) {
      if (keep.count(row.revision) > 0) continue;
      std::string id = ReplicaId(ck.ns, ck.isvc, row.revision, row.index);
      if (supervisor_->GetStatus(id).ok()) continue;
      if (row.pid > 0 && store::IsSameProcess(row.pid, row.process_start_time)) {
        ::kill(-static_cast<pid_t>(row.pid), SIGTERM);  // its own process group
        ::kill(static_cast<pid_t>(row.pid), SIGTERM);
      }
      for (int port : row.ports) ports_.Release(port);
      (void)store_->DeleteReplica(ck, row.revision, row.index);
    }
  }
  if (drop_revisions) {
    auto revisions = store_->ListRevisions(ck);
    if (revisions.ok()) {
      for (const auto& rev : *revisions) {
        if (keep.count(rev.name) == 0) (void)store_->DeleteRevision(ck, rev.name);
      }
    }
  }
}

StatusOr<std::vector<gateway::Endpoint>> Reconciler::EnsureReplicas(
    const spec::InferenceService& isvc, ComponentType type, const spec::ComponentSpec& comp,
    const store::Revision& revision, const std::string& model_dir, int wanted,
    const spec::ComponentSpec* predictor, ComponentOutcome* outcome) {
  const std::string& ns = isvc.metadata.namespace_name;
  const std::string& name = isvc.metadata.name;
  std::string type_name(spec::ComponentTypeName(type));
  store::ComponentKey ck{ns, name, type_name};
  store::ResourceKey key = IsvcKey(ns, name);
  auto rows = store_->ListReplicas(ck);
  if (!rows.ok()) return rows.status();
  // The revision's own spec: an older revision runs as it was, not as the latest says.
  const spec::ComponentSpec rev_comp = RevisionComponent(isvc, type, comp, revision);
  std::vector<gateway::Endpoint> endpoints;
  // The replicas to run: the lowest indices, skipping replicas that are draining (a scale-up
  // during a drain starts a new replica rather than waiting for the old one to exit).
  std::set<int64_t> chosen;
  for (int64_t i = 0; static_cast<int>(chosen.size()) < wanted; ++i) {
    if (draining_.count(ReplicaId(ns, name, revision.name, i)) == 0) chosen.insert(i);
  }
  for (int64_t i : chosen) {
    std::string id = ReplicaId(ns, name, revision.name, i);
    ++outcome->total_copies;
    auto status = supervisor_->GetStatus(id);
    if (status.ok()) {
      if (status->state == ReplicaState::kReady) {
        endpoints.push_back({options_.replica_host, static_cast<uint16_t>(status->http_port)});
      }
      if (status->state == ReplicaState::kFailed || status->restart_count > 0) {
        if (status->state == ReplicaState::kFailed) ++outcome->failed_copies;
        if (status->last_failure) outcome->last_failure = status->last_failure;
        if (status->state == ReplicaState::kFailed && outcome->reason.empty()) {
          outcome->reason = "ReplicaFailed";
          outcome->message = status->last_failure ? status->last_failure->reason : status->reason;
          outcome->model_state = "FailedToLoad";
        }
      }
      continue;
    }
    const store::Replica* row = nullptr;
    for (const auto& r : *rows) {
      if (r.revision == revision.name && r.index == i) row = &r;
    }
    int http_port = 0;
    int grpc_port = 0;
    std::filesystem::path log_path =
        options_.log_dir / ns / name / (revision.name + "-" + std::to_string(i) + ".log");
    if (row != nullptr && !row->ports.empty()) {
      http_port = row->ports[0];
      grpc_port = row->ports.size() > 1 ? row->ports[1] : 0;
      (void)ports_.Reserve(http_port);
      if (grpc_port > 0) (void)ports_.Reserve(grpc_port);
    } else {
      auto hp = ports_.Allocate();
      if (!hp.ok()) return hp.status();
      auto gp = ports_.Allocate();
      if (!gp.ok()) {
        ports_.Release(*hp);
        return gp.status();
      }
      http_port = *hp;
      grpc_port = *gp;
    }
    std::error_code ec;
    std::filesystem::create_directories(log_path.parent_path(), ec);
    auto spec = BuildReplicaSpec(isvc, type, rev_comp, model_dir, http_port, grpc_port, id,
                                 log_path.string(), predictor);
    if (!spec.ok()) {
      outcome->reason = spec.status().code() == StatusCode::kNotFound ? "RuntimeSelectionFailed"
                                                                       : "InvalidRuntime";
      outcome->message = spec.status().message();
      outcome->model_state = "FailedToLoad";
      RecordEvent(key, "Warning", outcome->reason, spec.status().message());
      EnqueueAfter(key, options_.retry_max);
      return spec.status();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      replica_owner_[id] = key;
    }
    store::Replica record_row;
    record_row.component = ck;
    record_row.revision = revision.name;
    record_row.index = i;
    record_row.ports = {http_port, grpc_port};
    record_row.log_path = log_path.string();
    record_row.state = "Starting";
    Status started = Status::Ok();
    bool adopted = false;
    if (row != nullptr && row->pid > 0) {
      ReplicaRecord record;
      record.id = id;
      record.pid = static_cast<pid_t>(row->pid);
      record.start_time = row->process_start_time;
      record.argv_hash = ArgvHash(spec->process.argv);
      record.http_port = http_port;
      record.grpc_port = grpc_port;
      record.log_path = row->log_path;
      Status a = supervisor_->Adopt(*spec, record);
      if (a.ok()) {
        adopted = true;
        record_row.pid = row->pid;
        record_row.process_start_time = row->process_start_time;
        spdlog::info("adopted replica {} (pid {})", id, row->pid);
      } else {
        spdlog::info("replica {} not adopted ({}); starting it again", id, a.message());
      }
    }
    if (!adopted) {
      (void)store_->PutReplica(record_row);
      started = supervisor_->Start(std::move(*spec));
    }
    if (!started.ok()) {
      outcome->reason = "ReplicaStartFailed";
      outcome->message = started.message();
      outcome->model_state = "FailedToLoad";
      RecordEvent(key, "Warning", "ReplicaStartFailed", id + ": " + started.message());
      // Nothing runs: forget the row and its ports, and try again shortly.
      (void)store_->DeleteReplica(ck, revision.name, i);
      ports_.Release(http_port);
      if (grpc_port > 0) ports_.Release(grpc_port);
      EnqueueAfter(key, options_.retry_initial);
    } else if (!adopted) {
      RecordEvent(key, "Normal", "ReplicaStarted",
                  id + " on port " + std::to_string(http_port) + ", log " + log_path.string());
    }
  }
  // Replicas beyond what is wanted now (a scale-down): a ready one keeps its route while the
  // gateway drains it, and stops once idle (StartDrains); one that never became ready stops now.
  for (const ReplicaStatus& r : supervisor_->List()) {
    ParsedId p;
    if (!ParseReplicaId(r.id, &p) || p.ns != ns || p.isvc != name ||
        p.revision != revision.name || chosen.count(p.index) > 0) {
      continue;
    }
    if (r.state == ReplicaState::kDraining || r.state == ReplicaState::kStopped) continue;
    if (r.state == ReplicaState::kReady) {
      gateway::Endpoint endpoint{options_.replica_host, static_cast<uint16_t>(r.http_port)};
      endpoints.push_back(endpoint);
      outcome->drains.push_back({{ns, name, GatewayComponent(type), revision.name}, endpoint, r.id});
      continue;
    }
    (void)supervisor_->Stop(r.id, options_.stop_grace);
  }
  return endpoints;
}

StatusOr<ReplicaSpec> Reconciler::BuildReplicaSpec(const spec::InferenceService& isvc,
                                                   ComponentType type,
                                                   const spec::ComponentSpec& comp,
                                                   const std::string& model_dir, int http_port,
                                                   int grpc_port, const std::string& id,
                                                   const std::string& log_path,
                                                   const spec::ComponentSpec* predictor) {
  const std::string& ns = isvc.metadata.namespace_name;
  const std::string& name = isvc.metadata.name;
  spec::ContainerSpec container;
  bool quiver_runtime = false;
  if (comp.kind == spec::ComponentSpec::Kind::kModel) {
    auto ns_docs = store_->List("ServingRuntime", ns);
    auto cluster_docs = store_->List("ClusterServingRuntime", "");
    if (!ns_docs.ok()) return ns_docs.status();
    if (!cluster_docs.ok()) return cluster_docs.status();
    std::vector<spec::ServingRuntime> ns_runtimes, cluster_runtimes;
    for (const Json& d : ns_docs->items) {
      auto r = spec::ServingRuntimeFromJson(d);
      if (r.ok()) ns_runtimes.push_back(std::move(*r));
    }
    for (const Json& d : cluster_docs->items) {
      auto r = spec::ServingRuntimeFromJson(d);
      if (r.ok()) cluster_runtimes.push_back(std::move(*r));
    }
    auto runtime = spec::SelectRuntime(comp, ns_runtimes, cluster_runtimes);
    if (!runtime.ok()) return runtime.status();
    if ((*runtime)->containers.empty()) {
      return InvalidArgument("runtime " + (*runtime)->metadata.name + " has no container");
    }
    container = spec::MergeContainers((*runtime)->containers[0], comp);
  } else {
    if (comp.containers.empty()) return InvalidArgument(std::string(spec::ComponentTypeName(type)) +
                                                        ".containers: empty");
    container = comp.containers[0];
  }
  if (!container.command.empty()) {
    quiver_runtime = container.command[0] == "quiver";
  } else if (!container.args.empty() && container.args[0] == "quiver") {
    quiver_runtime = true;
  }
  if (type == ComponentType::kTransformer && predictor != nullptr) {
    // As KServe's webhook does for a transformer: where the predictor is and under which name.
    // The predictor is reached through the gateway's path form for its component host.
    auto has = [&](std::string_view flag) { return HasFlag(container.args, flag); };
    if (!has("--model_name")) container.args.push_back("--model_name=" + name);
    if (!has("--predictor_host")) {
      container.args.push_back("--predictor_host=127.0.0.1:" +
                               std::to_string(options_.gateway_port) + "/serving/" + ns + "/" +
                               name + "-predictor");
    }
    if (!has("--http_port") && !has("--http-port")) {
      container.args.push_back("--http_port=" + std::to_string(http_port));
    }
    if (!has("--protocol") && !has("--predictor_protocol")) {
      container.args.push_back(std::string("--protocol=") +
                               (predictor->protocol_version == spec::Protocol::kV1 ? "v1"
                                                                                   : "v2"));
    }
  }
  spec::LocalCommandOptions opts;
  opts.name = name;
  opts.namespace_name = ns;
  opts.labels = isvc.metadata.labels;
  opts.annotations = isvc.metadata.annotations;
  opts.model_dir = model_dir;
  opts.http_port = http_port;
  opts.grpc_port = grpc_port;
  QUIVER_ASSIGN_OR_RETURN(spec::LocalCommand local, spec::BuildLocalCommand(container, opts));
  if (!local.argv.empty() && local.argv[0] == "quiver") local.argv[0] = options_.quiver_binary;
  if (quiver_runtime) {
    // A replica is reached through the gateway: it listens on loopback only, and serves its
    // model and nothing else (no built-in test models), unless the runtime says otherwise.
    auto has = [&](std::string_view flag) { return HasFlag(local.argv, flag); };
    if (!has("--host")) local.argv.push_back("--host=" + options_.replica_host);
    if (!has("--builtin-models") && !has("--builtin_models")) {
      local.argv.push_back("--builtin-models=none");
    }
  }
  ReplicaSpec spec;
  spec.id = id;
  spec.process.argv = std::move(local.argv);
  spec.process.working_dir = local.working_dir;
  spec.process.log_path = log_path;
  spec.process.env = options_.base_env;
  for (const auto& e : local.env) spec.process.env.push_back(e.name + "=" + e.value);
  if (!comp.storage_uri.empty()) spec.process.env.push_back("STORAGE_URI=" + comp.storage_uri);
  spec.http_port = http_port;
  spec.grpc_port = quiver_runtime ? grpc_port : 0;
  spec.readiness.port = http_port;
  spec.readiness.host = options_.replica_host;
  if (quiver_runtime || comp.protocol_version != spec::Protocol::kV1) {
    spec.readiness.kind = ProbeTarget::Kind::kHttpGet;
    spec.readiness.path = "/v2/health/ready";
  } else if (comp.kind == spec::ComponentSpec::Kind::kModel) {
    // KServe's V1 protocol has no server-ready endpoint: the model's own status.
    spec.readiness.kind = ProbeTarget::Kind::kHttpGet;
    spec.readiness.path = "/v1/models/" + name;
  } else {
    spec.readiness.kind = ProbeTarget::Kind::kTcpConnect;
  }
  spec.stop_grace = options_.stop_grace;
  spec.lifecycle.start_timeout = options_.start_timeout;
  spec.lifecycle.probe_initial_interval = options_.probe_initial_interval;
  spec.lifecycle.probe_fast_for = options_.probe_fast_for;
  return spec;
}

namespace {

std::string Megabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

}  // namespace

std::optional<StatusOr<std::string>> Reconciler::ModelDir(const store::ResourceKey& owner,
                                                          const std::string& revision,
                                                          const std::string& uri,
                                                          std::string* progress) {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = downloads_.find(revision);
    if (it != downloads_.end()) {
      if (!it->second.done) {
        const storage::ProgressUpdate& p = it->second.progress;
        if (p.bytes_done > 0) {
          *progress = Megabytes(p.bytes_done) +
                      (p.bytes_total > 0 ? " of " + Megabytes(p.bytes_total) : "") +
                      (p.current_file.empty() ? "" : " (" + p.current_file + ")");
        }
        return std::nullopt;
      }
      if (it->second.status.ok()) {
        retries_.erase(revision);
        return StatusOr<std::string>(it->second.model_dir);
      }
      RetryState& retry = retries_[revision];
      if (!it->second.retry_scheduled) {
        // Backoff doubles with every failure of this revision's download.
        it->second.retry_scheduled = true;
        auto delay = options_.retry_initial * (1LL << std::min(retry.failures, 16));
        delay = std::min<std::chrono::milliseconds>(delay, options_.retry_max);
        ++retry.failures;
        retry.next = now + delay;
        timers_.emplace(retry.next, owner);
      }
      if (now < retry.next) return StatusOr<std::string>(it->second.status);
      downloads_.erase(it);  // time to try again
    }
    downloads_[revision] = DownloadResult{};
    download_jobs_.push_back([this, owner, revision, uri] {
      auto result = storage_->Materialize(
          uri,
          [this, revision](const storage::ProgressUpdate& update) {
            std::lock_guard<std::mutex> lock(mu_);
            downloads_[revision].progress = update;
          },
          &cancel_downloads_);
      {
        std::lock_guard<std::mutex> lock(mu_);
        DownloadResult& d = downloads_[revision];
        d.done = true;
        if (result.ok()) {
          d.model_dir = result->model_dir.string();
        } else {
          d.status = result.status();
        }
      }
      if (!result.ok()) {
        spdlog::warn("storage initializer for {} ({}): {}", revision, uri,
                  result.status().ToString());
      }
      Enqueue(owner);
    });
  }
  wake_.notify_all();
  return std::nullopt;
}

StatusOr<std::string> Reconciler::ServiceDirectory::Resolve(const std::string& ns,
                                                            const std::string& name) const {
  bool is_v1 = true;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = v1.find(ns + "/" + name);
    if (it == v1.end()) {
      return NotFound("InferenceService " + ns + "/" + name + " not found");
    }
    is_v1 = it->second;
  }
  // KServe resolves serviceName to the InferenceService's address plus its protocol's predict
  // path; here the address is the gateway's path form for the service.
  std::string base =
      "http://127.0.0.1:" + std::to_string(gateway_port) + "/serving/" + ns + "/" + name;
  return is_v1 ? base + "/v1/models/" + name + ":predict" : base + "/v2/models/" + name + "/infer";
}

Status Reconciler::ReconcileGraph(const Json& doc) {
  store::ResourceKey key = store::KeyOf(doc);
  const std::string id = key.ns + "/" + key.name;
  const Json old_status =
      doc.contains("status") && doc["status"].is_object() ? doc["status"] : Json::object();
  Json status = Json::object();
  if (doc["metadata"].contains("generation")) {
    status["observedGeneration"] = doc["metadata"]["generation"];
  }
  status["url"] = "http://" + key.name + "." + key.ns + "." + options_.domain;
  status["address"] = {{"url", "http://127.0.0.1:" + std::to_string(options_.gateway_port) +
                                   "/serving/" + key.ns + "/" + key.name}};
  Status problem = Status::Ok();
  std::string reason;
  auto graph = spec::InferenceGraphFromJson(doc);
  if (!graph.ok()) {
    problem = graph.status();
    reason = "InvalidSpec";
  } else {
    const std::string fingerprint = doc["spec"].dump();
    auto it = graphs_.find(id);
    if (it == graphs_.end() || it->second.fingerprint != fingerprint) {
      graph::RouterOptions ro;
      const std::string ns = key.ns;
      std::shared_ptr<const ServiceDirectory> services = services_;
      ro.resolve_service = [services, ns](const std::string& service) {
        return services->Resolve(ns, service);
      };
      auto router = graph::GraphRouter::Create(std::move(*graph), std::move(ro));
      if (!router.ok()) {
        problem = router.status();
        reason = "InvalidGraph";
      } else {
        std::shared_ptr<graph::GraphRouter> shared(std::move(*router));
        GraphEntry entry;
        entry.fingerprint = fingerprint;
        entry.router = shared;
        entry.route.namespace_name = key.ns;
        entry.route.name = key.name;
        entry.route.handler = std::make_shared<const gateway::GraphHandler>(
            [shared](http::Request&& request, http::Responder responder) {
              shared->Handle(std::move(request), std::move(responder));
            });
        std::shared_ptr<graph::GraphRouter> old =
            it == graphs_.end() ? nullptr : std::move(it->second.router);
        graphs_[id] = std::move(entry);
        PublishRoutes();
        if (old) StopRouterLater(std::move(old));
        RecordEvent(key, "Normal", "RouterReady", "graph router serving " + status["url"].get<std::string>());
      }
    }
  }
  if (!problem.ok()) RecordEvent(key, "Warning", reason, problem.message());
  status["conditions"] = Json::array(
      {MakeCondition("Ready", problem.ok(), reason, problem.message(), old_status, Now())});
  if (WithoutTimes(status) != WithoutTimes(old_status)) {
    QUIVER_RETURN_IF_ERROR(store_->UpdateStatus(key, status).status());
  }
  return Status::Ok();
}

void Reconciler::RemoveGraph(const std::string& id) {
  auto it = graphs_.find(id);
  if (it == graphs_.end()) return;
  std::shared_ptr<graph::GraphRouter> old = std::move(it->second.router);
  graphs_.erase(it);
  PublishRoutes();
  StopRouterLater(std::move(old));
}

void Reconciler::StopRouterLater(std::shared_ptr<graph::GraphRouter> router) {
  // Requests in flight on the old router finish (up to 30 s) off the reconcile thread.
  router_stoppers_.emplace_back([router = std::move(router)] {
    router->Shutdown(std::chrono::seconds(30));
  });
}

gateway::RouteTable Reconciler::BuildRouteTable() const {
  gateway::RouteTable table;
  for (const auto& [_, r] : routes_) table.services.push_back(r);
  for (const auto& [_, g] : graphs_) table.graphs.push_back(g.route);
  return table;
}

void Reconciler::PublishRoutes() {
  Status s = gateway_->SetRouteTable(BuildRouteTable());
  if (!s.ok()) spdlog::error("gateway rejected the route table: {}", s.ToString());
}

void Reconciler::OnReplicaEvent(const ReplicaEvent& event) {
  ParsedId p;
  if (!ParseReplicaId(event.id, &p)) return;
  store::ComponentKey ck{p.ns, p.isvc, p.component};
  store::ResourceKey owner = IsvcKey(p.ns, p.isvc);
  const ReplicaStatus& s = event.status;
  if (event.state == ReplicaState::kStopped) {
    (void)store_->DeleteReplica(ck, p.revision, p.index);
    if (s.http_port > 0) ports_.Release(s.http_port);
    if (s.grpc_port > 0) ports_.Release(s.grpc_port);
    std::lock_guard<std::mutex> lock(mu_);
    replica_owner_.erase(event.id);
  } else {
    store::Replica row;
    row.component = ck;
    row.revision = p.revision;
    row.index = p.index;
    row.pid = s.pid;
    row.process_start_time = s.start_time;
    row.ports = {s.http_port, s.grpc_port};
    row.log_path = s.log_path;
    row.state = std::string(ReplicaStateName(event.state));
    (void)store_->PutReplica(row);
  }
  if (event.state == ReplicaState::kFailed) {
    std::string message = event.id + ": " + event.reason;
    if (s.last_failure && !s.last_failure->log_tail.empty()) {
      message += "; last log lines:\n" + s.last_failure->log_tail;
    }
    RecordEvent(owner, "Warning", "ReplicaFailed", message);
  } else if (event.state == ReplicaState::kReady) {
    RecordEvent(owner, "Normal", "ReplicaReady", event.id + " is ready");
  }
  Enqueue(owner);
}

void Reconciler::RecordEvent(const store::ResourceKey& key, std::string type, std::string reason,
                             std::string message) {
  std::string fingerprint = type + "|" + reason + "|" + message;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string& last = last_events_[key.ToString()];
    if (last == fingerprint) return;  // the same event again: once is enough
    last = fingerprint;
  }
  if (type == "Warning") {
    spdlog::warn("{} {}: {}", key.ToString(), reason, message);
  } else {
    spdlog::info("{} {}: {}", key.ToString(), reason, message);
  }
  store::Event e;
  e.type = std::move(type);
  e.reason = std::move(reason);
  e.message = std::move(message);
  (void)store_->RecordEvent(key, std::move(e));
}

std::string Reconciler::Now() const { return FormatTime(options_.wall_now()); }

}  // namespace quiver::control
