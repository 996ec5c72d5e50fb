// Store: the control plane's durable state in one SQLite file (WAL, synchronous=NORMAL): KServe
// resources with Kubernetes metadata semantics, revisions, replicas and events. A write returns
// only after its transaction committed, so a crash (even kill -9) loses nothing acknowledged.
// Thread-safety: every method may be called from any thread; one connection is shared under a
// mutex (SQLite serialises writers anyway, and these calls take microseconds).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quiver::store {

using Json = nlohmann::ordered_json;
using WallClock = std::function<std::chrono::system_clock::time_point()>;

// Identifies one resource. `ns` is empty for cluster-scoped kinds.
struct ResourceKey {
  std::string kind;  // "InferenceService"
  std::string ns;
  std::string name;

  // "InferenceService/default/sklearn-iris" (cluster-scoped: "ClusterServingRuntime//name").
  std::string ToString() const;
  bool operator==(const ResourceKey&) const = default;
};

// The key of a document: kind, metadata.namespace, metadata.name.
ResourceKey KeyOf(const Json& doc);

struct ResourceList {
  std::vector<Json> items;
  int64_t resource_version = 0;  // the store's version when the list was read
};

// One component (predictor, transformer, explainer) of an InferenceService: revisions belong
// to it.
struct ComponentKey {
  std::string ns;
  std::string isvc;
  std::string component;  // "predictor" | "transformer" | "explainer"

  // "isvc/default/sklearn-iris/predictor"
  std::string ToString() const;
};

// An immutable snapshot of a component spec; a new one is made whenever the spec changes.
struct Revision {
  ComponentKey component;
  std::string name;         // "sklearn-iris-predictor-00001"
  int64_t ordinal = 0;      // 1, 2, ... per component
  std::string fingerprint;  // of the spec, chosen by the caller
  Json spec;
  std::string created;          // RFC 3339
  Json state = Json::object();  // the reconciler's own record (ready, replicas wanted, ...)
};

// One child process serving a revision. `process_start_time` (from /proc, see
// process_identity.h) lets a restarted daemon tell that `pid` is still the process it started.
struct Replica {
  ComponentKey component;
  std::string revision;
  int64_t index = 0;
  int64_t pid = 0;
  uint64_t process_start_time = 0;
  std::vector<int> ports;
  std::string log_path;
  std::string state;  // the supervisor's words: "Starting", "Ready", "Unready", "Failed", "Draining"
};

struct Event {
  std::string time;    // RFC 3339, filled by RecordEvent
  std::string type;    // "Normal" | "Warning"
  std::string reason;  // "RevisionCreated"
  std::string message;
};

struct StoreOptions {
  std::string path;  // the database file; its directory must exist
  WallClock clock = [] { return std::chrono::system_clock::now(); };
  // Produces metadata.uid for new resources; a random UUID by default.
  std::function<std::string()> new_uid;
  int busy_timeout_ms = 5000;
  // Events kept per resource; older ones are dropped as new ones arrive.
  int max_events_per_resource = 100;
};

class Store {
 public:
  // Opens (creating or migrating) the database.
  static StatusOr<std::unique_ptr<Store>> Open(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- Resources. Documents are whole objects: apiVersion, kind, metadata, spec, status. The
  // caller validates them first (spec::DefaultAndValidate); the store owns metadata.uid,
  // generation, resourceVersion, creationTimestamp and deletionTimestamp.

  // Stores a new resource: uid, generation 1, the next resourceVersion and creationTimestamp
  // are assigned and the status starts empty. AlreadyExists when the key is taken.
  StatusOr<Json> Create(const Json& doc);
  // Replaces labels, annotations, finalizers and spec; the status is kept. When
  // metadata.resourceVersion is given and is not the stored one, fails with
  // kFailedPrecondition (an HTTP 409 Conflict). generation is bumped only when spec changes;
  // an update that changes nothing writes nothing and keeps the resourceVersion. A resource
  // being deleted whose last finalizer is removed is deleted. NotFound when absent.
  StatusOr<Json> Replace(const Json& doc);
  // Replaces the status only (resourceVersion is bumped, generation is not). `expected_version`
  // as in Replace; empty means no check.
  StatusOr<Json> UpdateStatus(const ResourceKey& key, const Json& status,
                              std::string_view expected_version = {});
  StatusOr<Json> Get(const ResourceKey& key);
  // Every resource of `kind` in `ns`, or in all namespaces when `ns` is empty; sorted by
  // namespace then name.
  StatusOr<ResourceList> List(std::string_view kind, std::string_view ns);
  // Kubernetes semantics: without finalizers the resource (and its events) is removed and its
  // last state returned; with finalizers it is only marked (metadata.deletionTimestamp) and
  // stays until they are removed by Replace. NotFound when absent.
  StatusOr<Json> Delete(const ResourceKey& key);

  // --- Revisions.

  // Records a new revision of `component` with the next ordinal and the name
  // "{isvc}-{component}-{ordinal:05}".
  StatusOr<Revision> CreateRevision(const ComponentKey& component, std::string_view fingerprint,
                                    const Json& spec, const Json& state = Json::object());
  // Oldest first.
  StatusOr<std::vector<Revision>> ListRevisions(const ComponentKey& component);
  Status UpdateRevisionState(const ComponentKey& component, std::string_view revision,
                             const Json& state);
  // Removes a revision and its replicas.
  Status DeleteRevision(const ComponentKey& component, std::string_view revision);

  // --- Replicas.

  // Inserts or replaces the replica (component, revision, index).
  Status PutReplica(const Replica& replica);
  // Every replica of the component's revisions, by revision ordinal then index.
  StatusOr<std::vector<Replica>> ListReplicas(const ComponentKey& component);
  Status DeleteReplica(const ComponentKey& component, std::string_view revision, int64_t index);

  // --- Events, bounded per resource (see StoreOptions).

  Status RecordEvent(const ResourceKey& key, Event event);
  // Oldest first.
  StatusOr<std::vector<Event>> ListEvents(const ResourceKey& key);

  // The newest resourceVersion handed out.
  StatusOr<int64_t> CurrentResourceVersion();

  // The schema version this build writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 1;

 private:
  class Statement;
  explicit Store(StoreOptions options, sqlite3* db);

  Status Migrate();
  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT (rolled back when it fails).
  Status InTransaction(const std::function<Status()>& body);
  Status Exec(const char* sql);
  // A cached prepared statement, reset and unbound when the returned object dies.
  StatusOr<Statement> Prepare(const char* sql);
  Status SqlError(std::string_view what) const;
  StatusOr<int64_t> NextResourceVersion();
  StatusOr<std::optional<Json>> Load(const ResourceKey& key);
  Status Write(const Json& object, bool insert);
  Status Remove(const ResourceKey& key);
  std::string Now() const;

  const StoreOptions options_;
  std::mutex mu_;
  sqlite3* db_;                                      // guarded by mu_
  std::map<const char*, sqlite3_stmt*> statements_;  // guarded by mu_; keyed by SQL literal
};

}  // namespace quiver::store
