// Gateway: the ingress of `quiver up`. An HttpServer on the gateway port routes each request by
// Host header (or the /serving/{namespace}/{name}/ path form, see route_index.h) to a service's
// entry component, picks a revision by traffic percent (or tag), an endpoint by least
// outstanding requests within containerConcurrency (queueing when all are full), and proxies
// the request with per-thread keep-alive connection pools (http/client.h).
// Thread-safety: every public method may be called from any thread. The route table is an
// immutable snapshot swapped atomically; request threads never lock to read it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "gateway/route_table.h"
#include "http/client.h"
#include "http/server.h"

namespace quiver::gateway {

struct GatewayOptions {
  http::ServerOptions server;  // port 8080 by default (KServe's ingress port); 0 picks one
  // Threads that run the backend connections; 0: as many as the server's I/O threads.
  int client_threads = 0;
  http::ClientOptions client;
  // The cluster domain of {name}.{namespace}.{domain} hosts (KServe's default).
  std::string domain = "example.com";
  // An endpoint that refused a connection is avoided this long (unless nothing else is left).
  std::chrono::milliseconds avoid_after_connect_failure{2'000};
  // How often queued requests are checked against their timeout.
  std::chrono::milliseconds queue_sweep_interval{50};
  // Injected for tests; defaults: std::chrono::steady_clock::now and a per-thread generator
  // of uniform values in [0, 1) (the traffic split's random number).
  std::function<std::chrono::steady_clock::time_point()> clock;
  std::function<double()> random;
};

struct RevisionRef;
// Called when a request starts waiting for a revision that has no usable endpoint (a
// scale_from_zero revision at zero replicas): the control plane scales it up at once instead of
// at its next autoscaler tick. Runs on an I/O thread: must be quick and must not call back
// into the gateway.
using DemandCallback = std::function<void(const RevisionRef& revision)>;

// Names one revision of one component of one service.
struct RevisionRef {
  std::string namespace_name;
  std::string name;
  Component component = Component::kPredictor;
  std::string revision;

  bool operator==(const RevisionRef&) const = default;
};

// What the autoscaler reads: per revision, requests holding an endpoint slot now, requests
// waiting for one, and requests answered so far (cumulative); and since the revision entered
// the table, the integral of requests present (queued or in flight) over time and the
// requests that arrived, so that the average concurrency over any interval is exact.
struct RevisionStats {
  RevisionRef revision;
  int64_t in_flight = 0;
  int64_t queued = 0;
  uint64_t completed = 0;
  double request_seconds = 0;
  uint64_t arrivals = 0;
  std::chrono::steady_clock::time_point at;  // when this was read (the gateway's clock)
};

class Gateway {
 public:
  // Binds the port (serving starts with Run). The route table starts empty: every host is 404.
  static StatusOr<std::unique_ptr<Gateway>> Create(GatewayOptions options);
  ~Gateway();

  // Validates and publishes a new table. Counters, queues and draining marks of revisions and
  // endpoints that stay in the table carry over; requests queued for a revision that left the
  // table are answered 503. Returns kInvalidArgument (naming the field) and keeps the old table
  // when the new one is invalid.
  Status SetRouteTable(RouteTable table);
  // Set before Run; see DemandCallback.
  void SetDemandCallback(DemandCallback on_demand);

  uint16_t port() const;
  // Runs the server's and the client's I/O threads (the caller's thread is one of them) until
  // Shutdown has drained in-flight requests.
  void Run();
  // Stops accepting; in-flight requests finish (up to the server's drain timeout).
  void Shutdown();

  std::vector<RevisionStats> Snapshot() const;

  // Marks an endpoint of a revision draining: it gets no new requests. `on_idle` runs once its
  // in-flight count is 0 (at once when it already is), on an arbitrary thread. kNotFound when
  // the table has no such revision or endpoint. The mark lasts while the endpoint stays listed.
  Status DrainEndpoint(const RevisionRef& revision, const Endpoint& endpoint,
                       std::function<void()> on_idle);

  // Answers 504 to queued requests past their timeout. Run calls it every
  // queue_sweep_interval; tests with an injected clock call it directly.
  void ExpireQueued();

  class Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::gateway
