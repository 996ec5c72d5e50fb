#include "graph/graph_engine.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "graph/http_url.h"
#include "graph/payload_mapping.h"

namespace quiver::graph {

namespace {

constexpr std::string_view kFailed = "Failed to process request";

// A step's or node's answer on its way up the graph: a response (any status), or a failure
// of the router itself, which ends the request with KServe's {"error", "cause"} body.
struct Outcome {
  bool failed = false;
  int status = 200;
  std::string body;  // the response body, or the failure's cause
  std::string content_type = "application/json";
};

Outcome Failure(int status, std::string cause) {
  return Outcome{.failed = true, .status = status, .body = std::move(cause), .content_type = {}};
}

bool Success(int status) { return status >= 200 && status <= 299; }

// The data flowing into a node or step; `from_client` tells a client's bad body (400) from a
// service's (500).
struct Payload {
  std::string body;
  bool from_client = false;
};

using Continuation = std::function<void(Outcome)>;

double DefaultRandom() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

int HttpStatusForResolve(StatusCode code) {
  switch (code) {
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kInvalidArgument:
      return 400;
    default:
      return 500;
  }
}

std::string NodePath(const std::string& node) { return "spec.nodes." + node; }

}  // namespace

// One request through the graph. Held by shared_ptrs in the continuations of its calls.
class GraphRun : public std::enable_shared_from_this<GraphRun> {
 public:
  GraphRun(std::shared_ptr<const GraphEngine> engine, std::shared_ptr<const Headers> headers,
           StepCaller& caller)
      : engine_(std::move(engine)),
        headers_(std::move(headers)),
        caller_(caller),
        deadline_(engine_->options().clock() + engine_->options().graph_timeout) {}

  void RunNode(int index, Payload input, Continuation k);
  void RunStep(const GraphEngine::Step& step, Payload input, Continuation k);

  const GraphEngine& engine() const { return *engine_; }
  Clock::time_point Now() const { return engine_->options().clock(); }

 private:
  void CallService(const GraphEngine::Step& step, std::string body, Continuation k);
  void RunSequence(const GraphEngine::Node& node, Payload input, Continuation k);
  void RunEnsemble(const GraphEngine::Node& node, Payload input, Continuation k);

  std::string GraphTimeoutCause() const {
    return "the graph did not answer within its timeout of " +
           std::to_string(engine_->options().graph_timeout.count()) + " ms (spec.timeout)";
  }

  std::shared_ptr<const GraphEngine> engine_;
  std::shared_ptr<const Headers> headers_;
  StepCaller& caller_;
  Clock::time_point deadline_;
};

void GraphRun::RunNode(int index, Payload input, Continuation k) {
  const GraphEngine::Node& node = engine_->nodes()[index];
  switch (node.type) {
    case spec::RouterType::kSequence:
      return RunSequence(node, std::move(input), std::move(k));
    case spec::RouterType::kEnsemble:
      return RunEnsemble(node, std::move(input), std::move(k));
    case spec::RouterType::kSplitter: {
      size_t pick = PickWeighted(node.weights, engine_->options().random());
      return RunStep(node.steps[pick], std::move(input), std::move(k));
    }
    case spec::RouterType::kSwitch: {
      Json doc = Json::parse(input.body, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded()) {
        if (input.from_client) {
          return k(Failure(400, "node \"" + node.name +
                                    "\" is a Switch, whose conditions need a JSON request "
                                    "body; the request body is not JSON"));
        }
        return k(Failure(500, "node \"" + node.name +
                                  "\" is a Switch, whose conditions need JSON; the previous "
                                  "step's response is not JSON"));
      }
      for (const GraphEngine::Step& step : node.steps) {
        if (step.condition->Exists(doc)) return RunStep(step, std::move(input), std::move(k));
      }
      // KServe's cause, word for word: clients may match on it.
      return k(Failure(404, "None of the routes matched with the switch condition"));
    }
  }
  k(Failure(500, "node \"" + node.name + "\": unknown router type"));
}

void GraphRun::RunSequence(const GraphEngine::Node& node, Payload input, Continuation k) {
  struct State {
    const GraphEngine::Node* node;
    Payload input;
    Outcome last;
    size_t next = 0;
    Continuation k;
  };
  auto state = std::make_shared<State>();
  state->node = &node;
  state->input = std::move(input);
  state->k = std::move(k);
  // Each step's continuation calls `advance` again; a shared_ptr to the function keeps it alive
  // for as long as a call is in flight.
  auto advance = std::make_shared<std::function<void()>>();
  *advance = [self = shared_from_this(), state, weak = std::weak_ptr(advance)]() {
    auto again = weak.lock();
    if (state->next == state->node->steps.size()) return state->k(std::move(state->last));
    size_t i = state->next++;
    const GraphEngine::Step& step = state->node->steps[i];
    Payload request = state->input;
    if (step.spec.data == "$response" && i > 0) request = Payload{state->last.body, false};
    if (step.condition) {
      // Evaluated on the previous response (Compile refuses a condition on the first step).
      Json doc = Json::parse(state->last.body, nullptr, /*allow_exceptions=*/false);
      if (doc.is_discarded()) {
        return state->k(Failure(500, step.label + ": its condition " +
                                         step.condition->text() +
                                         " is evaluated on the previous response, which is not "
                                         "JSON"));
      }
      // Not matched: the sequence stops with the previous response, and 200 (KServe's).
      if (!step.condition->Exists(doc)) {
        state->last.status = 200;
        return state->k(std::move(state->last));
      }
    }
    self->RunStep(step, std::move(request), [state, &step, again](Outcome o) {
      if (o.failed) return state->k(std::move(o));
      // A Hard step that fails stops the sequence with its own answer; a Soft one's answer
      // flows on like any other.
      if (step.spec.dependency == spec::StepDependency::kHard && !Success(o.status)) {
        return state->k(std::move(o));
      }
      state->last = std::move(o);
      (*again)();
    });
  };
  (*advance)();
}

void GraphRun::RunEnsemble(const GraphEngine::Node& node, Payload input, Continuation k) {
  struct State {
    const GraphEngine::Node* node;
    std::vector<std::optional<Outcome>> results;
    size_t next = 0;  // results are judged in step order, as KServe reads its channels
    bool answered = false;
    Json merged = Json::object();
    Continuation k;
  };
  auto state = std::make_shared<State>();
  state->node = &node;
  state->results.resize(node.steps.size());
  state->k = std::move(k);
  auto judge = [state]() {
    while (!state->answered && state->next < state->results.size() &&
           state->results[state->next]) {
      size_t i = state->next++;
      const GraphEngine::Step& step = state->node->steps[i];
      Outcome& o = *state->results[i];
      if (o.failed) {
        state->answered = true;
        return state->k(std::move(o));
      }
      Json doc = Json::parse(o.body, nullptr, /*allow_exceptions=*/false);
      if (!doc.is_object()) {
        state->answered = true;
        return state->k(Failure(500, step.label + " answered " + std::to_string(o.status) +
                                         " with a body that is not a JSON object; an Ensemble "
                                         "merges JSON objects"));
      }
      if (step.spec.dependency == spec::StepDependency::kHard && !Success(o.status)) {
        state->answered = true;
        return state->k(Outcome{.status = o.status, .body = doc.dump()});
      }
      state->merged[step.key] = std::move(doc);
    }
    if (!state->answered && state->next == state->results.size()) {
      state->answered = true;
      state->k(Outcome{.status = 200, .body = state->merged.dump()});
    }
  };
  for (size_t i = 0; i < node.steps.size(); ++i) {
    RunStep(node.steps[i], input, [state, i, judge](Outcome o) {
      state->results[i] = std::move(o);
      judge();
    });
  }
}

void GraphRun::RunStep(const GraphEngine::Step& step, Payload input, Continuation k) {
  if (step.spec.map_predictions_to_instances) {
    input.body = MapPredictionsToInstances(input.body);
  }
  if (step.spec.map_outputs_to_inputs) {
    auto mapped = MapOutputsToInputs(input.body, step.spec.output_to_input);
    if (!mapped.ok()) {
      return k(Failure(input.from_client ? 400 : 500,
                       step.label + ": " + mapped.status().message()));
    }
    input.body = std::move(mapped).value();
  }
  if (step.node >= 0) return RunNode(step.node, std::move(input), std::move(k));
  CallService(step, std::move(input.body), std::move(k));
}

void GraphRun::CallService(const GraphEngine::Step& step, std::string body, Continuation k) {
  std::string url = step.spec.service_url;
  if (!step.spec.service_name.empty()) {
    const auto& resolve = engine_->options().resolve_service;
    if (!resolve) {
      return k(Failure(500, step.label + ": serviceName \"" + step.spec.service_name +
                                "\" cannot be resolved: the router has no service resolver"));
    }
    StatusOr<std::string> resolved = resolve(step.spec.service_name);
    if (!resolved.ok()) {
      return k(Failure(HttpStatusForResolve(resolved.status().code()),
                       step.label + ": " + resolved.status().message()));
    }
    url = std::move(resolved).value();
  }
  auto now = Now();
  if (now >= deadline_) return k(Failure(504, GraphTimeoutCause()));
  auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - now);
  auto timeout = remaining;
  const auto& step_timeout = engine_->options().step_timeout;
  if (step_timeout && *step_timeout < remaining) timeout = *step_timeout;
  bool graph_bound = timeout == remaining;
  StepRequest request{.url = url, .body = std::move(body), .headers = headers_,
                      .timeout = timeout};
  caller_.Call(std::move(request), [self = shared_from_this(), &step, url, graph_bound,
                                    k = std::move(k)](StepReply reply) {
    if (!reply.status.ok()) {
      if (reply.status.code() == StatusCode::kDeadlineExceeded &&
          (graph_bound || self->Now() >= self->deadline_)) {
        return k(Failure(504, self->GraphTimeoutCause()));
      }
      // KServe answers 500 when a service cannot be called, whatever the step's dependency.
      return k(Failure(500, step.label + ": POST " + url + ": " + reply.status.message()));
    }
    k(Outcome{.status = reply.http_status,
              .body = std::move(reply.body),
              .content_type = reply.content_type.empty() ? std::string("application/json")
                                                         : std::move(reply.content_type)});
  });
}

GraphEngine::GraphEngine(EngineOptions options, std::vector<Node> nodes)
    : options_(std::move(options)), nodes_(std::move(nodes)) {}
GraphEngine::~GraphEngine() = default;

StatusOr<std::shared_ptr<const GraphEngine>> GraphEngine::Compile(
    const spec::InferenceGraph& graph, EngineOptions options) {
  if (!options.random) options.random = DefaultRandom;
  if (!options.clock) options.clock = [] { return Clock::now(); };
  if (options.graph_timeout.count() <= 0) {
    return InvalidArgument("graph timeout must be positive, got " +
                           std::to_string(options.graph_timeout.count()) + " ms");
  }
  if (options.step_timeout && options.step_timeout->count() <= 0) {
    return InvalidArgument("step timeout must be positive, got " +
                           std::to_string(options.step_timeout->count()) + " ms");
  }
  if (!graph.nodes.count("root")) {
    return InvalidArgument("spec.nodes.root: required: the graph's entry node must be named root");
  }
  // root first, then the others in name order.
  std::map<std::string, int> index{{"root", 0}};
  for (const auto& [name, node] : graph.nodes) {
    if (name != "root") index.emplace(name, static_cast<int>(index.size()));
  }
  std::vector<Node> nodes(index.size());
  std::string errors;
  auto add_error = [&](const std::string& e) { errors += (errors.empty() ? "" : "; ") + e; };
  for (const auto& [name, router] : graph.nodes) {
    Node& node = nodes[index[name]];
    node.name = name;
    node.type = router.router_type;
    if (router.steps.empty()) add_error(NodePath(name) + ".steps: required: at least one step");
    int weight_sum = 0;
    for (size_t i = 0; i < router.steps.size(); ++i) {
      const spec::InferenceStep& s = router.steps[i];
      std::string path = NodePath(name) + ".steps[" + std::to_string(i) + "]";
      Step step;
      step.spec = s;
      step.key = s.name.empty() ? std::to_string(i) : s.name;
      step.label = s.name.empty() ? "step " + path : "step \"" + s.name + "\" (" + path + ")";
      if (!s.node_name.empty()) {
        auto it = index.find(s.node_name);
        if (it == index.end()) {
          add_error(path + ".nodeName: no node named \"" + s.node_name + "\" in spec.nodes");
        } else {
          step.node = it->second;
        }
      } else if (!s.service_url.empty()) {
        auto url = ParseHttpUrl(s.service_url);
        if (!url.ok()) add_error(path + ".serviceUrl: " + url.status().message());
      } else if (s.service_name.empty()) {
        add_error(path + ": one of serviceName, serviceUrl, nodeName is required");
      }
      if (!s.condition.empty()) {
        auto parsed = GjsonPath::Parse(s.condition);
        if (!parsed.ok()) {
          add_error(path + ".condition: " + parsed.status().message() + " in \"" + s.condition +
                    "\"");
        } else {
          step.condition = std::make_shared<const GjsonPath>(std::move(parsed).value());
        }
      }
      if (router.router_type == spec::RouterType::kSwitch && s.condition.empty()) {
        add_error(path + ".condition: required on a Switch's steps (a step without one never "
                         "matches)");
      }
      if (router.router_type == spec::RouterType::kSequence && i == 0 && !s.condition.empty()) {
        add_error(path + ".condition: the first step of a Sequence cannot have a condition (it "
                         "is evaluated on the previous step's response)");
      }
      if (router.router_type == spec::RouterType::kSplitter) {
        int w = s.weight.value_or(0);
        if (!s.weight) add_error(path + ".weight: required on a Splitter's steps");
        node.weights.push_back(w);
        weight_sum += w;
      }
      node.steps.push_back(std::move(step));
    }
    if (router.router_type == spec::RouterType::kSplitter && weight_sum != 100) {
      add_error(NodePath(name) + ".steps: the weights of a Splitter's steps must sum to 100, got " +
                std::to_string(weight_sum));
    }
  }
  if (!errors.empty()) return InvalidArgument(errors);
  return std::shared_ptr<const GraphEngine>(
      std::make_shared<GraphEngine>(std::move(options), std::move(nodes)));
}

void GraphEngine::Run(std::string body, std::shared_ptr<const Headers> headers,
                      StepCaller& caller, std::function<void(GraphResult)> done) const {
  auto run = std::make_shared<GraphRun>(shared_from_this(), std::move(headers), caller);
  run->RunNode(0, Payload{std::move(body), true}, [done = std::move(done)](Outcome o) {
    if (o.failed) return done(GraphResult{o.status, ErrorBody(kFailed, o.body)});
    done(GraphResult{o.status, std::move(o.body), std::move(o.content_type)});
  });
}

size_t PickWeighted(const std::vector<int>& weights, double u) {
  int point = static_cast<int>(std::floor(u * 100.0));
  point = std::clamp(point, 0, 99);
  int end = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    end += weights[i];
    if (point < end) return i;
  }
  return weights.empty() ? 0 : weights.size() - 1;
}

std::string ErrorBody(std::string_view error, std::string_view cause) {
  Json body = Json::object();
  body["error"] = std::string(error);
  body["cause"] = std::string(cause);
  return body.dump();
}

}  // namespace quiver::graph
