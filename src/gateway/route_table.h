// RouteTable: what the gateway routes, as the control plane describes it. A plain value: the
// control plane builds one, validates it, and hands it to Gateway::SetRouteTable, which
// publishes an immutable snapshot (readers never lock). PickRevision is the pure traffic split.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/server.h"

namespace quiver::gateway {

enum class Component { kPredictor = 0, kTransformer = 1, kExplainer = 2 };
inline constexpr int kComponentCount = 3;
std::string_view ComponentName(Component c);  // "predictor", "transformer", "explainer"

// One ready replica of a revision.
struct Endpoint {
  std::string host;  // an IP address (or a name resolved on each new connection)
  uint16_t port = 0;

  std::string ToString() const;  // "host:port" ("[v6]:port")
  bool operator==(const Endpoint&) const = default;
};

// KServe's default when a component sets no `timeout`: Knative's revision timeoutSeconds.
inline constexpr std::chrono::seconds kDefaultRevisionTimeout{300};

// One revision of a component and its share of the component's traffic.
struct RevisionRoute {
  std::string name;   // unique within the component, e.g. "sklearn-iris-predictor-00002"
  int percent = 100;  // 0..100; the component's percents sum to 100 (0 = tag-only revision)
  // "latest", "prev", ...: reachable as {tag}-{name}... hosts when the service enables tag
  // routing. Two traffic targets of one revision (KServe's latest and prev on the same
  // revision) become one route with both tags.
  std::vector<std::string> tags;
  std::vector<Endpoint> endpoints;  // ready replicas only; empty: the revision is not ready
  // containerConcurrency: requests one endpoint may hold at once (0 = unlimited). Requests
  // beyond it wait in this revision's FIFO queue, as Knative's queue-proxy makes them wait.
  int container_concurrency = 0;
  // Queue bound when every endpoint is at its limit; 0: 10 × containerConcurrency (the depth
  // Knative's queue-proxy gives its breaker). A full queue answers 503.
  int queue_depth = 0;
  // Whole request, queueing included (the component's `timeout`); past it the client gets 504.
  std::chrono::milliseconds timeout = kDefaultRevisionTimeout;
  // The activator: a revision that may have no ready replica while it scales from zero. With
  // no usable endpoint its requests wait (bounded by `activator_queue_depth`, past the timeout
  // 503) and the gateway asks the control plane for a replica (GatewayOptions::on_demand);
  // without it, such a request is answered 503 at once.
  bool scale_from_zero = false;
  // Queue bound while the revision has no endpoint (Knative's activator breaker: 10,000).
  int activator_queue_depth = 10'000;

  bool has_tag(std::string_view tag) const;
};

// The revisions of one component with their traffic percents.
using Traffic = std::vector<RevisionRoute>;

// One InferenceService. Absent components have empty traffic.
struct ServiceRoute {
  std::string namespace_name;                       // Kubernetes namespace, e.g. "default"
  std::string name;                                 // InferenceService name
  std::array<Traffic, kComponentCount> components;  // indexed by Component
  // Every tag has its hosts, as Knative gives every tagged traffic target a URL; the control
  // plane tags `latest` only with serving.kserve.io/enable-tag-routing, `prev` always.

  Traffic& component(Component c) { return components[static_cast<int>(c)]; }
  const Traffic& component(Component c) const { return components[static_cast<int>(c)]; }
  bool has(Component c) const { return !component(c).empty(); }
};

// An InferenceGraph served inside the gateway: a request for its host goes to `handler` (the
// graph router), which answers it on its own threads. Shared so that requests in flight keep
// the router alive after a table swap.
using GraphHandler = std::function<void(http::Request&& request, http::Responder responder)>;
struct GraphRoute {
  std::string namespace_name;
  std::string name;  // InferenceGraph name: host {name}.{namespace}.{domain}
  std::shared_ptr<const GraphHandler> handler;
};

struct RouteTable {
  std::vector<ServiceRoute> services;
  // Graph hosts rank below every service host: an InferenceService of the same name and
  // namespace keeps its host.
  std::vector<GraphRoute> graphs;
};

// Checks names (DNS labels: lowercase letters, digits, '-'), unique services, unique revision
// names and tags per component, percents in 0..100 summing to 100 for every component that
// has revisions, ports, limits. The message names the field, e.g.
// "services[1].predictor[0].percent: must be in 0..100, got 120".
Status ValidateRouteTable(const RouteTable& table);

// Picks the revision for a random u in [0, 1): walks the cumulative percents, so revision i
// receives percent_i of the traffic (u < 0.10 → the first of {10, 90}). Returns the index, or
// -1 when no revision carries traffic. Pure: tests pass u exactly.
int PickRevision(const Traffic& traffic, double u);

// Reads a table from JSON (used by gateway_fixture and handy for the control plane's tests):
// {"services":[{"namespace":"default","name":"iris",
//   "predictor":[{"revision":"iris-predictor-00001","percent":100,"tags":[],
//                 "endpoints":["127.0.0.1:9001"],"container_concurrency":0,
//                 "queue_depth":0,"timeout_seconds":300,"scale_from_zero":false}],
//   "transformer":[...],"explainer":[...]}]}
// Errors name the JSON path. The result is validated.
StatusOr<RouteTable> RouteTableFromJson(std::string_view json);

}  // namespace quiver::gateway
