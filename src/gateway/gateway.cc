#include "gateway/gateway.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "common/system.h"
#include "gateway/balancer.h"
#include "gateway/proxy_headers.h"
#include "gateway/route_index.h"

namespace quiver::gateway {

namespace asio = boost::asio;

namespace {

std::string ErrorJson(std::string_view message) {
  std::string out = "{\"error\":\"";
  out.reserve(message.size() + 14);
  for (char c : message) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  out += "\"}";
  return out;
}

// The gateway's own answers. Backend failures are 502 and timeouts 504 (as Envoy and Knative
// answer them); the table in protocol/ maps model-server errors and has no proxy codes.
int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kUnavailable:
    case StatusCode::kResourceExhausted:
      return 503;
    case StatusCode::kInvalidArgument:
      return 400;
    default:
      return 502;
  }
}

void SendError(http::Responder& responder, int status, std::string_view message) {
  responder.Send(http::Response{.status = status, .body = ErrorJson(message)});
}

double DefaultRandom() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

std::string RevisionKey(const std::string& ns, const std::string& name, Component c,
                        const std::string& revision) {
  return ns + "/" + name + "/" + std::string(ComponentName(c)) + "/" + revision;
}

std::atomic<uint64_t> next_gateway_id{1};

}  // namespace

// One revision as the request path sees it.
struct CompiledRevision {
  RevisionRef ref;
  std::shared_ptr<RevisionState> state;
  std::shared_ptr<const EndpointList> endpoints;
  std::chrono::milliseconds timeout;
  const RevisionRoute* route;
};

struct CompiledService {
  const ServiceRoute* route;
  std::array<std::vector<CompiledRevision>, kComponentCount> components;
};

// An immutable published table. Built in place (services point into `table`).
struct RouteSnapshot {
  RouteTable table;
  std::optional<RouteIndex> index;
  std::vector<CompiledService> services;
};

// Control-plane-side record of a revision; only touched under Impl::mu_.
struct RevisionEntry {
  RevisionRef ref;
  std::shared_ptr<RevisionState> state;
  std::unordered_map<std::string, std::shared_ptr<EndpointState>> endpoints;  // by "host:port"
};

struct ClientThread {
  asio::io_context io{1};
  std::optional<http::HttpClient> client;
  std::thread thread;
};

class ProxyCall;

class Gateway::Impl {
 public:
  explicit Impl(GatewayOptions options) : options_(std::move(options)), id_(next_gateway_id++) {
    if (!options_.clock) options_.clock = [] { return Clock::now(); };
    if (!options_.random) options_.random = DefaultRandom;
    auto empty = std::make_shared<RouteSnapshot>();
    empty->index.emplace(empty->table, options_.domain);
    current_.store(std::move(empty));
  }

  Status Init() {
    int n = options_.client_threads > 0      ? options_.client_threads
            : options_.server.io_threads > 0 ? options_.server.io_threads
                                             : AvailableCpus();
    for (int i = 0; i < n; ++i) {
      auto t = std::make_unique<ClientThread>();
      t->client.emplace(t->io, options_.client);
      clients_.push_back(std::move(t));
    }
    sweep_timer_.emplace(clients_[0]->io);
    auto server = http::HttpServer::Create(
        options_.server, [this](http::Request&& request, http::Responder responder) {
          Handle(std::move(request), std::move(responder));
        });
    if (!server.ok()) return server.status();
    server_ = std::move(server).value();
    return Status::Ok();
  }

  ~Impl() {
    // Client threads are joined by Run; if Run never ran, nothing is running.
    for (auto& t : clients_) t->client.reset();
  }

  void Handle(http::Request&& request, http::Responder responder);
  Status SetRouteTable(RouteTable table);
  std::vector<RevisionStats> Snapshot() const;
  Status DrainEndpoint(const RevisionRef& ref, const Endpoint& endpoint,
                       std::function<void()> on_idle);
  void ExpireQueued();
  void Run();
  void Shutdown() {
    shutting_down_ = true;
    server_->Shutdown();
    // Requests held for a replica (at containerConcurrency, or scaling from zero) would keep
    // the server's drain waiting: they get their answer now.
    std::vector<std::shared_ptr<RevisionState>> states;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [key, entry] : revisions_) states.push_back(entry.state);
    }
    for (auto& s : states) s->RejectWaiters(Unavailable("the gateway is shutting down"));
  }
  void SetDemandCallback(DemandCallback cb) { on_demand_ = std::move(cb); }
  uint16_t port() const { return server_->port(); }

  Clock::time_point Now() const { return options_.clock(); }
  const GatewayOptions& options() const { return options_; }
  ClientThread& client(int index) { return *clients_[index]; }

 private:
  const std::shared_ptr<const RouteSnapshot>& CurrentSnapshot();
  int ClientIndexForThisThread();
  void ScheduleSweep();

  GatewayOptions options_;
  const uint64_t id_;
  std::unique_ptr<http::HttpServer> server_;
  std::vector<std::unique_ptr<ClientThread>> clients_;
  std::optional<asio::steady_timer> sweep_timer_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> shutting_down_{false};
  std::atomic<int> next_client_{0};
  DemandCallback on_demand_;  // set before Run

  // Publication: the snapshot, then the version that tells threads to reload it.
  std::atomic<std::shared_ptr<const RouteSnapshot>> current_;
  std::atomic<uint64_t> version_{1};

  mutable std::mutex mu_;  // writers: SetRouteTable, Snapshot, DrainEndpoint, ExpireQueued
  std::unordered_map<std::string, RevisionEntry> revisions_;  // guarded by mu_
};

// One proxied request, from endpoint choice to the answer. Owned by shared_ptrs held by the
// revision's queue (while waiting) and by the client callback (while in flight).
class ProxyCall : public SlotWaiter, public std::enable_shared_from_this<ProxyCall> {
 public:
  ProxyCall(Gateway::Impl* gateway, std::shared_ptr<RevisionState> revision, http::Message request,
            http::Responder responder, int client_index, Clock::time_point now)
      : gateway_(gateway),
        revision_(std::move(revision)),
        request_(std::move(request)),
        responder_(std::move(responder)),
        client_index_(client_index) {
    revision_->meter.Arrive(now);
  }
  // The last owner lets go once the answer is sent (or the request was rejected).
  ~ProxyCall() override { revision_->meter.Depart(gateway_->Now()); }

  // On any thread: the slot is ours; the request leaves on this call's client thread.
  void OnSlot(std::shared_ptr<EndpointState> endpoint) override {
    endpoint_ = std::move(endpoint);
    asio::post(gateway_->client(client_index_).io,
               [self = shared_from_this()] { self->SendUpstream(); });
  }

  void OnRejected(Status status) override {
    SendError(responder_, HttpStatusFor(status), status.message());
  }

 private:
  // On the client thread.
  void SendUpstream() {
    auto now = gateway_->Now();
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (remaining.count() <= 0) {
      Finish();
      return OnRejected(
          DeadlineExceeded("request timed out before it reached revision " + revision_->key()));
    }
    gateway_->client(client_index_)
        .client->Send(
            endpoint_->backend, std::move(request_), remaining,
            [self = shared_from_this()](http::ClientResult&& r) { self->OnResult(std::move(r)); });
  }

  void OnResult(http::ClientResult&& result) {
    auto now = gateway_->Now();
    if (!result.status.ok() && !result.request_written && !retried_ && result.unsent) {
      // Nothing reached that backend: another replica may answer instead.
      retried_ = true;
      // Refused or timed out before a byte was sent: likely a dead replica the control plane
      // has not removed yet, so other requests avoid it for a while too.
      auto until = now + gateway_->options().avoid_after_connect_failure;
      endpoint_->avoid_until_ns.store(
          std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count());
      auto failed = endpoint_;
      revision_->Release(endpoint_.get(), now);
      endpoint_.reset();
      if (auto endpoints = revision_->endpoints()) {
        if (auto next = revision_->Acquire(*endpoints, failed.get(), now)) {
          spdlog::debug("gateway: {} failed before sending ({}); retrying on {}",
                        failed->backend.key, result.status.message(), next->backend.key);
          endpoint_ = std::move(next);
          request_ = std::move(*result.unsent);
          first_failure_ = result.status.message();
          return SendUpstream();
        }
      }
    }
    Finish();
    revision_->completed.fetch_add(1, std::memory_order_relaxed);
    if (result.status.ok()) {
      http::Response response;
      CopyUpstreamResponse(result.response, &response);
      responder_.Send(std::move(response));
      return;
    }
    int status = result.status.code() == StatusCode::kDeadlineExceeded ? 504 : 502;
    if (first_failure_.empty()) return SendError(responder_, status, result.status.message());
    SendError(responder_, status,
              result.status.message() + " (retried after " + first_failure_ + ")");
  }

  void Finish() {
    if (endpoint_) {
      revision_->Release(endpoint_.get(), gateway_->Now());
      endpoint_.reset();
    }
  }

  Gateway::Impl* gateway_;
  std::shared_ptr<RevisionState> revision_;
  std::shared_ptr<EndpointState> endpoint_;
  http::Message request_;
  http::Responder responder_;
  int client_index_;
  bool retried_ = false;
  std::string first_failure_;  // the failure a retry followed, for the error message
};

const std::shared_ptr<const RouteSnapshot>& Gateway::Impl::CurrentSnapshot() {
  struct Cache {
    uint64_t gateway = 0;
    uint64_t version = 0;
    std::shared_ptr<const RouteSnapshot> snapshot;
  };
  thread_local Cache cache;
  uint64_t version = version_.load(std::memory_order_acquire);
  if (cache.gateway != id_ || cache.version != version) {
    cache.snapshot = current_.load();
    cache.gateway = id_;
    cache.version = version;
  }
  return cache.snapshot;
}

int Gateway::Impl::ClientIndexForThisThread() {
  struct Binding {
    uint64_t gateway = 0;
    int index = 0;
  };
  thread_local Binding binding;
  if (binding.gateway != id_) {
    binding.gateway = id_;
    binding.index = next_client_.fetch_add(1) % static_cast<int>(clients_.size());
  }
  return binding.index;
}

void Gateway::Impl::Handle(http::Request&& request, http::Responder responder) {
  const RouteSnapshot& snap = *CurrentSnapshot();
  auto resolved = snap.index->Resolve(request.header("host"), request.target());
  if (!resolved.ok()) return SendError(responder, 404, resolved.status().message());
  const HostRoute& route = *resolved->route;
  if (route.graph >= 0) {
    // The graph router answers on its own threads; it holds the handler while it runs.
    std::shared_ptr<const GraphHandler> handler = snap.table.graphs[route.graph].handler;
    PrepareUpstreamRequest(request.message, resolved->target);
    return (*handler)(std::move(request), std::move(responder));
  }
  const CompiledService& service = snap.services[route.service];
  const ServiceRoute& spec = *service.route;
  auto component = RouteIndex::SelectComponent(spec, route, resolved->target);
  if (!component.ok()) return SendError(responder, 404, component.status().message());
  const Traffic& traffic = spec.component(*component);
  int index = -1;
  if (!route.tag.empty()) {
    for (size_t i = 0; i < traffic.size(); ++i) {
      if (traffic[i].has_tag(route.tag)) index = static_cast<int>(i);
    }
    if (index < 0) {
      return SendError(responder, 404,
                       "InferenceService " + spec.namespace_name + "/" + spec.name + " has no " +
                           std::string(ComponentName(*component)) + " revision tagged '" +
                           route.tag + "'");
    }
  } else {
    index = PickRevision(traffic, options_.random());
  }
  if (index < 0) {
    return SendError(responder, 503,
                     "InferenceService " + spec.namespace_name + "/" + spec.name +
                         " is not ready: no " + std::string(ComponentName(*component)) +
                         " revision receives traffic");
  }
  const CompiledRevision& rev = service.components[static_cast<int>(*component)][index];
  if (rev.endpoints->empty() && !rev.route->scale_from_zero) {
    return SendError(responder, 503,
                     "InferenceService " + spec.namespace_name + "/" + spec.name +
                         " is not ready: " + std::string(ComponentName(*component)) + " revision " +
                         rev.route->name + " has no ready replica");
  }
  PrepareUpstreamRequest(request.message, resolved->target);
  auto now = Now();
  auto call = std::make_shared<ProxyCall>(this, rev.state, std::move(request.message),
                                          std::move(responder), ClientIndexForThisThread(), now);
  call->deadline = now + rev.timeout;
  RevisionState& state = *rev.state;
  const bool limited = state.container_concurrency() > 0;
  // Requests already waiting go first (FIFO), so a newcomer does not overtake them.
  if (!limited || state.queued.load(std::memory_order_relaxed) == 0) {
    if (auto endpoint = state.Acquire(*rev.endpoints, nullptr, now)) {
      return call->OnSlot(std::move(endpoint));
    }
  }
  const bool cold = !state.HasUsableEndpoint();
  if (rev.route->scale_from_zero && (cold || !limited) &&
      !shutting_down_.load(std::memory_order_relaxed)) {
    // The activator: hold the request until a replica is usable, and ask for one now when
    // there is none. Without a limit the request can also land here because this thread's
    // table was older than the revision's endpoints (its replica draining, a new one listed):
    // the queue then serves it at once from the current endpoints.
    if (!state.Enqueue(call, now)) {
      return call->OnRejected(Unavailable(
          "revision " + rev.route->name + " of " + spec.namespace_name + "/" + spec.name +
          " is scaling from zero and " + std::to_string(state.activator_limit()) +
          " requests are already waiting for it"));
    }
    if (cold && on_demand_) on_demand_(rev.ref);
    return;
  }
  if (shutting_down_.load(std::memory_order_relaxed)) {
    return call->OnRejected(Unavailable("the gateway is shutting down"));
  }
  if (limited) {
    if (!state.Enqueue(call, now)) {
      call->OnRejected(
          Unavailable("revision " + rev.route->name + " of " + spec.namespace_name + "/" +
                      spec.name + " is overloaded: every replica is at containerConcurrency " +
                      std::to_string(state.container_concurrency()) + " and " +
                      std::to_string(state.queue_limit()) + " requests are already queued"));
    }
    return;
  }
  call->OnRejected(Unavailable("InferenceService " + spec.namespace_name + "/" + spec.name +
                               " is not ready: every replica of revision " + rev.route->name +
                               " is draining"));
}

Status Gateway::Impl::SetRouteTable(RouteTable table) {
  QUIVER_RETURN_IF_ERROR(ValidateRouteTable(table));
  auto snap = std::make_shared<RouteSnapshot>();
  snap->table = std::move(table);
  snap->index.emplace(snap->table, options_.domain);
  auto now = Now();
  std::vector<std::shared_ptr<RevisionState>> retired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::unordered_map<std::string, RevisionEntry> next;
    for (const ServiceRoute& s : snap->table.services) {
      CompiledService compiled{&s, {}};
      for (int c = 0; c < kComponentCount; ++c) {
        auto component = static_cast<Component>(c);
        for (const RevisionRoute& r : s.components[c]) {
          std::string key = RevisionKey(s.namespace_name, s.name, component, r.name);
          RevisionEntry entry;
          auto old = revisions_.find(key);
          const RevisionState fresh(key, r);
          if (old != revisions_.end() &&
              old->second.state->container_concurrency() == r.container_concurrency &&
              old->second.state->queue_limit() == fresh.queue_limit() &&
              old->second.state->scale_from_zero() == r.scale_from_zero &&
              old->second.state->activator_limit() == fresh.activator_limit()) {
            entry = std::move(old->second);
            revisions_.erase(old);
          } else {
            entry.ref = RevisionRef{s.namespace_name, s.name, component, r.name};
            entry.state = std::make_shared<RevisionState>(key, r);
          }
          auto list = std::make_shared<EndpointList>();
          std::unordered_map<std::string, std::shared_ptr<EndpointState>> endpoints;
          for (const Endpoint& e : r.endpoints) {
            std::string ekey = e.ToString();
            auto found = entry.endpoints.find(ekey);
            auto state =
                found != entry.endpoints.end() ? found->second : std::make_shared<EndpointState>(e);
            list->push_back(state);
            endpoints.emplace(std::move(ekey), std::move(state));
          }
          entry.endpoints = std::move(endpoints);
          entry.state->SetEndpoints(list, now);
          compiled.components[c].push_back(
              CompiledRevision{entry.ref, entry.state, list, r.timeout, &r});
          next.emplace(std::move(key), std::move(entry));
        }
      }
      snap->services.push_back(std::move(compiled));
    }
    for (auto& [key, entry] : revisions_) retired.push_back(entry.state);
    revisions_ = std::move(next);
    current_.store(std::move(snap));
    version_.fetch_add(1, std::memory_order_release);
  }
  for (auto& r : retired) r->Retire();
  return Status::Ok();
}

std::vector<RevisionStats> Gateway::Impl::Snapshot() const {
  auto now = options_.clock();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RevisionStats> out;
  out.reserve(revisions_.size());
  for (const auto& [key, entry] : revisions_) {
    auto reading = entry.state->meter.Read(now);
    out.push_back(RevisionStats{entry.ref, entry.state->in_flight.load(),
                                entry.state->queued.load(), entry.state->completed.load(),
                                reading.request_seconds, reading.arrivals, now});
  }
  return out;
}

Status Gateway::Impl::DrainEndpoint(const RevisionRef& ref, const Endpoint& endpoint,
                                    std::function<void()> on_idle) {
  std::shared_ptr<EndpointState> state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::string key = RevisionKey(ref.namespace_name, ref.name, ref.component, ref.revision);
    auto it = revisions_.find(key);
    if (it == revisions_.end()) return NotFound("no revision " + key + " in the route table");
    auto e = it->second.endpoints.find(endpoint.ToString());
    if (e == it->second.endpoints.end()) {
      return NotFound("revision " + key + " has no endpoint " + endpoint.ToString());
    }
    state = e->second;
  }
  state->draining.store(true);
  state->AddIdleCallback(std::move(on_idle));
  return Status::Ok();
}

void Gateway::Impl::ExpireQueued() {
  std::vector<std::shared_ptr<RevisionState>> states;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, entry] : revisions_) {
      if (entry.state->queued.load(std::memory_order_relaxed) > 0) states.push_back(entry.state);
    }
  }
  auto now = Now();
  for (auto& s : states) s->ExpireWaiters(now);
}

void Gateway::Impl::ScheduleSweep() {
  sweep_timer_->expires_after(options_.queue_sweep_interval);
  sweep_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    ExpireQueued();
    ScheduleSweep();
  });
}

void Gateway::Impl::Run() {
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& t : clients_) {
    guards.push_back(asio::make_work_guard(t->io));
    t->thread = std::thread([io = &t->io] { io->run(); });
  }
  asio::post(clients_[0]->io, [this] { ScheduleSweep(); });
  server_->Run();
  // The server has drained: no request needs a backend any more.
  stopping_ = true;
  for (auto& t : clients_) {
    asio::post(t->io, [t = t.get(), this] {
      if (t == clients_[0].get()) sweep_timer_->cancel();
      t->client->Close();
    });
  }
  guards.clear();
  for (auto& t : clients_) {
    t->io.stop();
    t->thread.join();
  }
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() = default;

StatusOr<std::unique_ptr<Gateway>> Gateway::Create(GatewayOptions options) {
  if (options.domain.empty()) return InvalidArgument("gateway domain: must not be empty");
  if (options.queue_sweep_interval.count() <= 0) {
    return InvalidArgument("gateway queue_sweep_interval: must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  QUIVER_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Status Gateway::SetRouteTable(RouteTable table) { return impl_->SetRouteTable(std::move(table)); }
void Gateway::SetDemandCallback(DemandCallback on_demand) {
  impl_->SetDemandCallback(std::move(on_demand));
}
uint16_t Gateway::port() const { return impl_->port(); }
void Gateway::Run() { impl_->Run(); }
void Gateway::Shutdown() { impl_->Shutdown(); }
std::vector<RevisionStats> Gateway::Snapshot() const { return impl_->Snapshot(); }
Status Gateway::DrainEndpoint(const RevisionRef& revision, const Endpoint& endpoint,
                              std::function<void()> on_idle) {
  return impl_->DrainEndpoint(revision, endpoint, std::move(on_idle));
}
void Gateway::ExpireQueued() { impl_->ExpireQueued(); }

}  // namespace quiver::gateway
