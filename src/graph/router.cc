#include "graph/router.h"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/field.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "graph/header_propagation.h"
#include "graph/http_url.h"

namespace quiver::graph {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

// Step calls over one thread's keep-alive pools; used only on that thread.
class HttpStepCaller : public StepCaller {
 public:
  explicit HttpStepCaller(http::HttpClient& client) : client_(client) {}

  void Call(StepRequest request, std::function<void(StepReply)> done) override {
    StatusOr<HttpUrl> url = ParseHttpUrl(request.url);
    if (!url.ok()) return done(StepReply{.status = url.status()});
    http::Message message{bhttp::verb::post, url->target, 11};
    bool has_content_type = false;
    if (request.headers) {
      for (const auto& [name, value] : *request.headers) {
        if (name == "Content-Type") has_content_type = true;
        message.insert(name, value);
      }
    }
    // KServe's router sends JSON unless the client's Content-Type was propagated.
    if (!has_content_type) message.set(bhttp::field::content_type, "application/json");
    message.body() = std::move(request.body);
    client_.Send(http::Backend::Make(url->host, url->port), std::move(message), request.timeout,
                 [done = std::move(done)](http::ClientResult&& result) {
                   StepReply reply;
                   reply.status = result.status;
                   if (result.status.ok()) {
                     reply.http_status = static_cast<int>(result.response.result_int());
                     auto ct = result.response[bhttp::field::content_type];
                     reply.content_type.assign(ct.data(), ct.size());
                     reply.body = std::move(result.response.body());
                   }
                   done(std::move(reply));
                 });
  }

 private:
  http::HttpClient& client_;
};

struct Worker {
  asio::io_context io{1};
  std::optional<http::HttpClient> client;
  std::optional<HttpStepCaller> caller;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
};

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find('?'));
}

}  // namespace

class GraphRouter::Impl {
 public:
  Impl(std::string name, std::shared_ptr<const GraphEngine> engine, HeaderPropagation headers)
      : name_(std::move(name)), engine_(std::move(engine)), propagation_(std::move(headers)) {}

  ~Impl() { Shutdown(std::chrono::milliseconds(0)); }

  void Start(int threads, const http::ClientOptions& client) {
    for (int i = 0; i < std::max(threads, 1); ++i) {
      auto w = std::make_unique<Worker>();
      w->client.emplace(w->io, client);
      w->caller.emplace(*w->client);
      w->guard.emplace(asio::make_work_guard(w->io));
      w->thread = std::thread([io = &w->io] { io->run(); });
      workers_.push_back(std::move(w));
    }
  }

  void Handle(http::Request&& request, http::Responder responder);
  void Shutdown(std::chrono::milliseconds wait);
  void MarkNotReady() { not_ready_.store(true); }

  Stats stats() const {
    return Stats{.requests = requests_.load(),
                 .errors = errors_.load(),
                 .in_flight = in_flight_.load()};
  }
  const std::string& name() const { return name_; }

 private:
  void Finish(const std::shared_ptr<http::Responder>& responder, GraphResult result) {
    http::Response response;
    response.status = result.status;
    response.body = std::move(result.body);
    if (result.content_type != "application/json") {
      // Response::content_type is a view: a step's own type travels as a header instead.
      response.headers.emplace_back("Content-Type", std::move(result.content_type));
    }
    requests_.fetch_add(1);
    if (result.status >= 400) errors_.fetch_add(1);
    responder->Send(std::move(response));
    if (in_flight_.fetch_sub(1) == 1) {
      std::lock_guard lock(mu_);
      idle_.notify_all();
    }
  }

  const std::string name_;
  const std::shared_ptr<const GraphEngine> engine_;
  const HeaderPropagation propagation_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<uint64_t> next_worker_{0};
  std::atomic<bool> draining_{false};   // no new graph requests
  std::atomic<bool> not_ready_{false};  // readiness fails
  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> errors_{0};
  std::mutex mu_;  // guards stopped_; with idle_, waits for in-flight requests
  std::condition_variable idle_;
  bool stopped_ = false;
};

void GraphRouter::Impl::Handle(http::Request&& request, http::Responder responder) {
  std::string_view path = PathOf(request.target());
  std::string_view method = request.method();
  bool get = method == "GET" || method == "HEAD";
  bool draining = draining_.load() || not_ready_.load();
  if (path == "/readyz") {
    // KServe's readiness probe: an empty 200, or Go's http.Error text while draining.
    if (draining) {
      return responder.Send(http::Response{
          .status = 503, .body = "shutting down\n", .content_type = "text/plain; charset=utf-8"});
    }
    return responder.Send(http::Response{.status = 200, .body = "", .content_type = "text/plain"});
  }
  if (get && path == "/v2/health/live") {
    return responder.Send(http::Response{.status = 200, .body = R"({"live":true})"});
  }
  if (get && path == "/v2/health/ready") {
    if (draining) {
      return responder.Send(
          http::Response{.status = 503, .body = ErrorBody("Router is not ready", "shutting down")});
    }
    return responder.Send(http::Response{.status = 200, .body = R"({"ready":true})"});
  }
  in_flight_.fetch_add(1);
  if (draining_.load()) {
    if (in_flight_.fetch_sub(1) == 1) {
      std::lock_guard lock(mu_);
      idle_.notify_all();
    }
    return responder.Send(http::Response{
        .status = 503,
        .body = ErrorBody("Failed to process request", "the router is shutting down")});
  }
  auto headers = std::make_shared<const Headers>(propagation_.Select(request.message));
  Worker& worker = *workers_[next_worker_.fetch_add(1) % workers_.size()];
  auto shared_responder = std::make_shared<http::Responder>(std::move(responder));
  asio::post(worker.io, [this, &worker, body = std::move(request.body()),
                         headers = std::move(headers), shared_responder]() mutable {
    engine_->Run(std::move(body), std::move(headers), *worker.caller,
                 [this, shared_responder](GraphResult result) {
                   Finish(shared_responder, std::move(result));
                 });
  });
}

void GraphRouter::Impl::Shutdown(std::chrono::milliseconds wait) {
  not_ready_.store(true);
  draining_.store(true);
  std::unique_lock lock(mu_);
  if (stopped_) return;
  idle_.wait_for(lock, wait, [this] { return in_flight_.load() == 0; });
  stopped_ = true;
  lock.unlock();
  for (auto& w : workers_) {
    asio::post(w->io, [w = w.get()] { w->client->Close(); });
    w->guard.reset();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  // Calls still in flight after `wait` were failed by Close; their runs answered 500 or were
  // dropped with their Responders (which answer 500 themselves).
  for (auto& w : workers_) w->caller.reset(), w->client.reset();
}

GraphRouter::GraphRouter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GraphRouter::~GraphRouter() = default;

StatusOr<std::unique_ptr<GraphRouter>> GraphRouter::Create(spec::InferenceGraph graph,
                                                           RouterOptions options) {
  EngineOptions engine_options;
  engine_options.resolve_service = std::move(options.resolve_service);
  engine_options.random = std::move(options.random);
  engine_options.clock = std::move(options.clock);
  engine_options.step_timeout = options.step_timeout;
  if (!engine_options.step_timeout && graph.router_timeouts.service_client) {
    engine_options.step_timeout = std::chrono::seconds(*graph.router_timeouts.service_client);
  }
  engine_options.graph_timeout =
      options.graph_timeout ? *options.graph_timeout
      : graph.timeout_seconds
          ? std::chrono::milliseconds(std::chrono::seconds(*graph.timeout_seconds))
          : std::chrono::milliseconds(std::chrono::seconds(graph.router_timeouts.server_write));
  auto engine = GraphEngine::Compile(graph, std::move(engine_options));
  if (!engine.ok()) {
    return engine.status().WithPrefix("InferenceGraph \"" + graph.metadata.name + "\"");
  }
  auto headers = HeaderPropagation::Create(options.propagate_headers);
  if (!headers.ok()) return headers.status();
  auto impl = std::make_unique<Impl>(graph.metadata.name, std::move(engine).value(),
                                     std::move(headers).value());
  impl->Start(options.threads, options.client);
  return std::unique_ptr<GraphRouter>(new GraphRouter(std::move(impl)));
}

void GraphRouter::Handle(http::Request&& request, http::Responder responder) {
  impl_->Handle(std::move(request), std::move(responder));
}
void GraphRouter::Shutdown(std::chrono::milliseconds wait) { impl_->Shutdown(wait); }
void GraphRouter::MarkNotReady() { impl_->MarkNotReady(); }
GraphRouter::Stats GraphRouter::stats() const { return impl_->stats(); }
const std::string& GraphRouter::name() const { return impl_->name(); }

}  // namespace quiver::graph
