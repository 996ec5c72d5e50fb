// GraphEngine: an InferenceGraph compiled for evaluation, with KServe's router semantics for
// Sequence, Switch, Ensemble and Splitter nodes (cmd/router/main.go), nested through nodeName.
// It does no I/O itself: each step call goes through a StepCaller (HTTP in the router, a fake in
// unit tests), so node evaluation is tested without a network.
// Thread-safety: a compiled engine is immutable; Run may be called from any thread, and one run
// is driven by its StepCaller's callbacks (the router keeps a run on one I/O thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "graph/gjson.h"
#include "spec/inference_graph.h"

namespace quiver::graph {

using Headers = std::vector<std::pair<std::string, std::string>>;
using Clock = std::chrono::steady_clock;

// One outgoing POST of a step.
struct StepRequest {
  std::string url;  // absolute http:// URL (the serviceUrl, or what serviceName resolved to)
  std::string body;
  std::shared_ptr<const Headers> headers;  // propagated from the client's request
  std::chrono::milliseconds timeout{0};    // the whole call: connect, send, receive
};

struct StepReply {
  // Not OK when no complete answer arrived: kUnavailable (refused, reset), kDeadlineExceeded,
  // kInvalidArgument (bad URL); the message names the URL. Any HTTP status is OK here.
  Status status;
  int http_status = 0;
  std::string body;
  std::string content_type;
};

class StepCaller {
 public:
  virtual ~StepCaller() = default;
  // Sends one step request and calls `done` exactly once, possibly before Call returns.
  virtual void Call(StepRequest request, std::function<void(StepReply)> done) = 0;
};

// What the client gets back.
struct GraphResult {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

struct EngineOptions {
  // A step's serviceName → the full predict URL; called per step call, from the run's thread.
  std::function<StatusOr<std::string>(const std::string& service_name)> resolve_service;
  // Uniform in [0, 1): the Splitter's draw. Default: a per-thread generator.
  std::function<double()> random;
  std::function<Clock::time_point()> clock;  // default: steady_clock::now
  // Per step call (routerTimeouts.serviceClient); unset: only the graph timeout applies.
  std::optional<std::chrono::milliseconds> step_timeout;
  // The whole request (spec.timeout); past it the client gets 504.
  std::chrono::milliseconds graph_timeout{60'000};
};

class GraphEngine : public std::enable_shared_from_this<GraphEngine> {
 public:
  // Checks what the spec's own validation does not: conditions parse as GJSON paths (the error
  // names the field and the position), serviceUrls are http:// URLs (https is rejected: the
  // router's client speaks plain HTTP, as KServe's does inside a mesh), every Switch step has
  // a condition (KServe's never matches one without), no Sequence's first step has one (KServe
  // would fail every request: there is no previous response), nodeName targets exist.
  static StatusOr<std::shared_ptr<const GraphEngine>> Compile(const spec::InferenceGraph& graph,
                                                              EngineOptions options);

  // Evaluates the root node on `body`; `done` is called exactly once, on the thread of the last
  // StepCaller callback (or inside Run when no step is called). `caller` must outlive the run.
  void Run(std::string body, std::shared_ptr<const Headers> headers, StepCaller& caller,
           std::function<void(GraphResult)> done) const;

  struct Node;
  struct Step;
  const EngineOptions& options() const { return options_; }
  const std::vector<Node>& nodes() const { return nodes_; }

  GraphEngine(EngineOptions options, std::vector<Node> nodes);
  ~GraphEngine();

 private:
  EngineOptions options_;
  std::vector<Node> nodes_;  // nodes_[0] is root
};

struct GraphEngine::Step {
  spec::InferenceStep spec;
  std::string label;  // for errors: `step "xgb" (nodes.root.steps[1])`
  std::string key;    // Ensemble key: the step name or its index
  int node = -1;      // nodeName target, index into nodes()
  std::shared_ptr<const GjsonPath> condition;
};

struct GraphEngine::Node {
  std::string name;
  spec::RouterType type = spec::RouterType::kSequence;
  std::vector<Step> steps;
  std::vector<int> weights;  // Splitter
};

// The Splitter's choice: the step whose cumulative weight first exceeds floor(u * 100), for u
// in [0, 1) and weights summing to 100 (KServe's pickupRoute without its off-by-one).
size_t PickWeighted(const std::vector<int>& weights, double u);

// KServe's router error body: {"error": error, "cause": cause}.
std::string ErrorBody(std::string_view error, std::string_view cause);

}  // namespace quiver::graph
