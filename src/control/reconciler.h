// Reconciler: turns the InferenceServices in the store into running replicas and gateway routes,
// and writes their status as KServe does. It compares desired with actual and acts, idempotently:
// a changed component spec makes a new immutable revision; a revision's model is materialized by
// the storage initializer (on download threads, so one slow or failing URI never blocks another
// service); its replicas are supervised child processes; traffic moves to the latest revision
// once it is ready and the previous one is then drained and stopped.
// Thread-safety: Notify may be called from any thread; the work runs on the reconciler's own
// thread (plus the download threads). Not copyable. Borrows the store, storage, gateway and
// supervisor, which must outlive it.
// Scaling: each revision that runs has a KPA autoscaler (control/autoscaler.h) fed by the
// gateway; its replica count is what EnsureReplicas runs. A replica that leaves is drained in
// the gateway first and stopped once idle. Traffic follows KServe's canary rules
// (control/traffic.h).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "autoscale/kpa.h"
#include "common/status.h"
#include "control/autoscaler.h"
#include "control/port_allocator.h"
#include "control/supervisor.h"
#include "gateway/gateway.h"
#include "graph/router.h"
#include "spec/inference_graph.h"
#include "spec/inference_service.h"
#include "spec/serving_runtime.h"
#include "storage/storage_initializer.h"
#include "store/store.h"

namespace quiver::control {

// KServe puts this finalizer on every InferenceService, so that a delete waits until the
// controller has cleaned up; Quiver's reconciler does the same (replicas stopped, routes gone).
inline constexpr std::string_view kFinalizer = "inferenceservice.finalizers";

struct ReconcilerOptions {
  std::filesystem::path log_dir;        // replica logs: {log_dir}/{ns}/{isvc}/{revision}-{i}.log
  std::string quiver_binary;            // what argv[0] "quiver" of a runtime becomes
  std::string domain = "example.com";   // status.url = http://{name}.{namespace}.{domain}
  int gateway_port = 8080;              // for status.address and the transformer's predictor
  std::string replica_host = "127.0.0.1";
  // The daemon's environment entries passed on to every replica (a replica otherwise gets only
  // its container's env); NAME=value.
  std::vector<std::string> base_env;
  int download_threads = 2;
  // A failed storage download or runtime selection is retried after this, doubling up to max.
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{std::chrono::minutes(5)};
  // SIGTERM to SIGKILL when a replica is stopped (quiver serve drains in-flight requests).
  std::chrono::milliseconds stop_grace{std::chrono::seconds(30)};
  std::chrono::milliseconds start_timeout{std::chrono::minutes(5)};
  std::function<std::chrono::system_clock::time_point()> wall_now = [] {
    return std::chrono::system_clock::now();
  };
  // Cluster-wide autoscaler settings (Knative's config-autoscaler); per-revision annotations
  // override what Knative lets them override.
  autoscale::KpaConfig kpa_defaults;
  AutoscalerOptions autoscaler;
  // While a replica starts, readiness is probed this often for `probe_fast_for` (then less
  // often): it bounds how late a cold start notices that its replica is ready. A probe of a
  // port nobody listens on yet costs a refused connect.
  std::chrono::milliseconds probe_initial_interval{5};
  std::chrono::milliseconds probe_fast_for{std::chrono::seconds(15)};
};

class Reconciler {
 public:
  // The supervisor is created by the reconciler (it owns the event wiring). Stores Quiver's
  // built-in ClusterServingRuntimes that the store does not have yet.
  static StatusOr<std::unique_ptr<Reconciler>> Create(ReconcilerOptions options,
                                                       store::Store* store,
                                                       storage::StorageInitializer* storage,
                                                       gateway::Gateway* gateway);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Adopts the replicas a previous daemon left running (or restarts them) and reconciles every
  // InferenceService; then keeps reconciling what Notify names and what the replicas report.
  void Start();
  // A resource was written (the API's change hook). Cheap; coalesces repeated keys.
  void Notify(const store::ResourceKey& key);
  // Stops the thread. With `stop_replicas` every replica is drained and stopped (a clean
  // shutdown); without, they keep running for the next daemon to adopt.
  void Shutdown(bool stop_replicas, std::chrono::milliseconds timeout);

 private:
  struct DownloadResult {
    bool done = false;
    bool retry_scheduled = false;  // a failure whose retry timer is set
    Status status;
    std::string model_dir;
    storage::ProgressUpdate progress;  // while it runs, for status messages
  };
  struct RetryState {
    int failures = 0;
    std::chrono::steady_clock::time_point next;
  };
  // What one reconcile of a component concluded, for status and routes.
  struct ComponentOutcome {
    std::string latest_created;
    std::string latest_ready;
    std::string rolled_out;           // carries the traffic
    std::string previous_rolled_out;
    bool ready = false;
    std::string reason;               // why not ready
    std::string message;
    std::optional<FailureInfo> last_failure;
    int failed_copies = 0;
    int total_copies = 0;
    std::string model_state;          // Pending|Loading|Loaded|FailedToLoad
    // Revisions that keep their replicas; the others are stopped once the gateway no longer
    // routes to them (so no request is sent to a replica that is shutting down).
    std::set<std::string> keep;
    gateway::Traffic traffic;
    store::Json status_traffic = store::Json::array();  // status.components[c].traffic
    // Ready replicas to take out of service: drained in the gateway once the routes that still
    // list them are published, then stopped when idle.
    struct Drain {
      gateway::RevisionRef ref;
      gateway::Endpoint endpoint;
      std::string replica_id;
    };
    std::vector<Drain> drains;
  };
  // Replica counts of one revision from the supervisor.
  struct ReplicaCounts {
    int current = 0;  // starting, ready or failing (not draining or stopped)
    int ready = 0;
  };

  Reconciler(ReconcilerOptions options, store::Store* store, storage::StorageInitializer* storage,
             gateway::Gateway* gateway);

  void Run();
  void Enqueue(const store::ResourceKey& key);
  void EnqueueAfter(const store::ResourceKey& key, std::chrono::milliseconds delay);
  void AdoptAll();
  void ReconcileKey(const store::ResourceKey& key);
  Status ReconcileService(store::Json doc);
  // An InferenceGraph runs inside the gateway: a graph::GraphRouter per graph, its host in the
  // route table, status url and Ready.
  Status ReconcileGraph(const store::Json& doc);
  void RemoveGraph(const std::string& key);
  gateway::RouteTable BuildRouteTable() const;
  Status FinalizeDeletion(const store::Json& doc);
  ComponentOutcome ReconcileComponent(const spec::InferenceService& isvc,
                                      spec::ComponentType type, const spec::ComponentSpec& comp,
                                      const store::Json& component_json,
                                      const store::Json& old_status,
                                      const spec::ComponentSpec* predictor);
  // Stops every replica of the component's revisions other than `keep` (and drops the
  // revisions' rows when `drop_revisions`).
  void RetireRevisions(const store::ComponentKey& ck, const std::set<std::string>& keep,
                       bool drop_revisions);
  // Makes `wanted` replicas of the revision run; returns the ready endpoints.
  ReplicaCounts CountReplicas(const std::string& ns, const std::string& name,
                              const std::string& revision);
  // Marks the drains of `outcome` in the gateway (the routes listing them are published).
  void StartDrains(const std::vector<ComponentOutcome::Drain>& drains);
  StatusOr<std::vector<gateway::Endpoint>> EnsureReplicas(
      const spec::InferenceService& isvc, spec::ComponentType type,
      const spec::ComponentSpec& comp, const store::Revision& revision,
      const std::string& model_dir, int wanted, const spec::ComponentSpec* predictor,
      ComponentOutcome* outcome);
  StatusOr<ReplicaSpec> BuildReplicaSpec(const spec::InferenceService& isvc,
                                         spec::ComponentType type,
                                         const spec::ComponentSpec& comp,
                                         const std::string& model_dir, int http_port,
                                         int grpc_port, const std::string& id,
                                         const std::string& log_path,
                                         const spec::ComponentSpec* predictor);
  // The model dir of a revision: started on a download thread when needed; nullopt while it
  // runs (with `*progress` saying how far it got); an error when it failed (retried later).
  std::optional<StatusOr<std::string>> ModelDir(const store::ResourceKey& owner,
                                                const std::string& revision,
                                                const std::string& uri, std::string* progress);
  void PublishRoutes();
  void OnReplicaEvent(const ReplicaEvent& event);
  void RecordEvent(const store::ResourceKey& key, std::string type, std::string reason,
                   std::string message);
  std::string Now() const;

  const ReconcilerOptions options_;
  store::Store* store_;
  storage::StorageInitializer* storage_;
  gateway::Gateway* gateway_;
  PortAllocator ports_;
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<Autoscaler> autoscaler_;

  std::mutex mu_;
  std::condition_variable wake_;
  bool quit_ = false;                                     // guarded by mu_
  std::deque<store::ResourceKey> queue_;                  // guarded by mu_
  std::set<std::string> queued_;                          // guarded by mu_: keys in queue_
  std::multimap<std::chrono::steady_clock::time_point, store::ResourceKey> timers_;  // mu_
  std::map<std::string, DownloadResult> downloads_;       // guarded by mu_: by revision name
  std::deque<std::function<void()>> download_jobs_;       // guarded by mu_
  std::map<std::string, ReplicaStatus> replicas_;         // guarded by mu_: the latest events
  std::map<std::string, store::ResourceKey> replica_owner_;  // guarded by mu_: id → isvc

  // Reconcile thread only.
  std::map<std::string, gateway::ServiceRoute> routes_;   // by "ns/name"
  std::map<std::string, RetryState> retries_;             // guarded by mu_; by revision name
  std::map<std::string, std::string> last_events_;        // de-duplicates repeated events
  std::set<std::string> draining_;                        // replica ids drained in the gateway
  struct GraphEntry {
    std::string fingerprint;  // the spec the router was made from
    std::shared_ptr<graph::GraphRouter> router;
    gateway::GraphRoute route;
  };
  std::map<std::string, GraphEntry> graphs_;              // by "ns/name"

  // What graph routers need to resolve a serviceName: the InferenceServices and their
  // predictor's protocol. Written by the reconcile thread, read by router threads; shared with
  // the routers so that one still draining never reaches a destroyed reconciler.
  struct ServiceDirectory {
    int gateway_port = 0;
    mutable std::mutex mu;
    std::map<std::string, bool> v1;  // "ns/name" → protocol v1; guarded by mu
    StatusOr<std::string> Resolve(const std::string& ns, const std::string& name) const;
  };
  std::shared_ptr<ServiceDirectory> services_ = std::make_shared<ServiceDirectory>();
  // Old graph routers draining after a change or a delete; joined by Shutdown.
  std::vector<std::thread> router_stoppers_;              // reconcile thread, then Shutdown
  void StopRouterLater(std::shared_ptr<graph::GraphRouter> router);

  std::atomic<bool> cancel_downloads_{false};  // set on shutdown
  std::thread thread_;
  std::vector<std::thread> download_threads_;
};

}  // namespace quiver::control
