// GraphRouter: serves one InferenceGraph over HTTP as KServe's router does (cmd/router): any
// request except the health routes runs the graph from `root`, each step a POST through
// per-thread keep-alive pools (http/client.h). Used by `quiver router` (standalone, and on
// Kubernetes) and by the gateway of `quiver up`.
// Thread-safety: Handle, Shutdown and stats may be called from any thread. The router owns its
// step-call threads (each with an io_context and an HttpClient); a request runs on one of them
// and its Responder is answered from there.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "graph/graph_engine.h"
#include "http/client.h"
#include "http/server.h"
#include "spec/inference_graph.h"

namespace quiver::graph {

struct RouterOptions {
  // A step's serviceName → the full predict URL (http://host:port/v1/models/m:predict or
  // .../v2/models/m/infer). Called per step call on a router thread; must be thread-safe. An
  // error fails the request: kNotFound → 404, kUnavailable → 503, others 500, the message as
  // the cause.
  std::function<StatusOr<std::string>(const std::string& service_name)> resolve_service;
  // KServe's PROPAGATE_HEADERS: regular expressions over header names (header_propagation.h).
  std::vector<std::string> propagate_headers;
  // Uniform in [0, 1) for Splitters; injected in tests. Default: a per-thread generator.
  std::function<double()> random;
  std::function<Clock::time_point()> clock;  // default: steady_clock::now
  // Per step call; default: the graph's routerTimeouts.serviceClient, else only the graph
  // timeout bounds a step.
  std::optional<std::chrono::milliseconds> step_timeout;
  // The whole request; default: the graph's spec.timeout, else routerTimeouts.serverWrite
  // (60 s), past which KServe's router could not write its answer anyway.
  std::optional<std::chrono::milliseconds> graph_timeout;
  int threads = 1;  // step-call threads (each a keep-alive pool)
  http::ClientOptions client;
};

class GraphRouter {
 public:
  // Compiles the graph (GraphEngine::Compile's checks, header patterns) and starts the
  // threads. kInvalidArgument names the field and what is wrong.
  static StatusOr<std::unique_ptr<GraphRouter>> Create(spec::InferenceGraph graph,
                                                       RouterOptions options);
  // Shuts down (if not yet) and joins the threads.
  ~GraphRouter();

  // Answers one request: GET|HEAD /v2/health/live → {"live": true}; GET|HEAD /v2/health/ready
  // → {"ready": true} (503 KServe's error body once shutting down); /readyz (any method) → 200,
  // or 503 "shutting down"; anything else runs the graph on the body, whatever the method and
  // path (as KServe's router). The responder may be answered on a router thread.
  void Handle(http::Request&& request, http::Responder responder);

  // Readiness (/readyz, /v2/health/ready) turns 503 while graph requests are still served:
  // KServe's router does this on SIGTERM so that endpoints drop it before it stops.
  void MarkNotReady();

  // Readiness turns 503 and new graph requests get 503; requests in flight finish (up to
  // `wait`), then the threads stop. Idempotent.
  void Shutdown(std::chrono::milliseconds wait = std::chrono::seconds(30));

  struct Stats {
    uint64_t requests = 0;  // graph requests answered
    uint64_t errors = 0;    // of which answered with a status >= 400
    int64_t in_flight = 0;
  };
  Stats stats() const;

  const std::string& name() const;

  class Impl;

 private:
  explicit GraphRouter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::graph
