#include "observe/trace_exporter.h"

#include <spdlog/spdlog.h>

#include "observe/background_thread.h"

namespace quiver::observe {
namespace {

using Steady = std::chrono::steady_clock;

// gRPC codes that mean the server failed (OpenTelemetry's rule for server spans).
bool GrpcServerError(int code) {
  return code == 2 || code == 4 || code == 12 || code == 13 || code == 14 || code == 15;
}

void AddModel(const RequestTelemetry& r, std::vector<SpanAttribute>* attrs) {
  if (!r.model_name.empty()) attrs->push_back({"model.name", r.model_name});
  if (!r.model_version.empty()) attrs->push_back({"model.version", r.model_version});
}

}  // namespace

std::string OtlpTracesUrl(std::string_view endpoint) {
  constexpr std::string_view kPath = "/v1/traces";
  if (endpoint.size() >= kPath.size() &&
      endpoint.substr(endpoint.size() - kPath.size()) == kPath) {
    return std::string(endpoint);
  }
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.remove_suffix(1);
  return std::string(endpoint) + std::string(kPath);
}

std::vector<SpanRecord> RequestSpans(const RequestTelemetry& r) {
  std::vector<SpanRecord> spans;
  spans.reserve(3);
  SpanRecord server;
  server.trace_id = r.trace.trace_id;
  server.span_id = r.trace.span_id;
  server.parent_span_id = r.parent_span_id;
  server.trace_state = r.trace.tracestate;
  server.kind = SpanKind::kServer;
  server.start_unix_nano = r.UnixNanos(r.start);
  server.end_unix_nano = r.UnixNanos(r.end);
  auto& attrs = server.attributes;
  attrs.reserve(11);
  if (r.transport == RequestTelemetry::Transport::kHttp) {
    std::string_view target = r.target;
    std::string_view path = target.substr(0, target.find('?'));
    server.name = r.method + " " + std::string(path);
    attrs.push_back({"http.request.method", r.method});
    attrs.push_back({"url.path", std::string(path)});
    if (path.size() < target.size()) {
      attrs.push_back({"url.query", std::string(target.substr(path.size() + 1))});
    }
    attrs.push_back({"http.response.status_code", int64_t{r.status}});
    attrs.push_back({"http.request.body.size", static_cast<int64_t>(r.bytes_in)});
    attrs.push_back({"http.response.body.size", static_cast<int64_t>(r.bytes_out)});
    if (r.status >= 500) {
      server.error = true;
      server.status_message = "HTTP " + std::to_string(r.status);
    }
  } else {
    // target is /package.Service/Method
    std::string_view target = r.target;
    if (!target.empty() && target.front() == '/') target.remove_prefix(1);
    server.name = std::string(target);
    size_t slash = target.find('/');
    attrs.push_back({"rpc.system", std::string("grpc")});
    attrs.push_back({"rpc.service", std::string(target.substr(0, slash))});
    attrs.push_back({"rpc.method", r.method});
    attrs.push_back({"rpc.grpc.status_code", int64_t{r.status}});
    if (GrpcServerError(r.status)) {
      server.error = true;
      server.status_message = r.error;
    }
  }
  attrs.push_back({"quiver.request_id", r.request_id});
  AddModel(r, &attrs);
  spans.push_back(std::move(server));

  auto child = [&](std::string name, Steady::time_point from, Steady::time_point to) {
    SpanRecord s;
    s.trace_id = r.trace.trace_id;
    s.span_id = NewSpanId();
    s.parent_span_id = r.trace.span_id;
    s.trace_state = r.trace.tracestate;
    s.name = std::move(name);
    s.kind = SpanKind::kInternal;
    s.start_unix_nano = r.UnixNanos(from);
    s.end_unix_nano = r.UnixNanos(to);
    AddModel(r, &s.attributes);
    spans.push_back(std::move(s));
  };
  if (r.queued()) child("queue", r.enqueued, r.executed() ? r.exec_start : r.end);
  if (r.executed()) child("execute", r.exec_start, r.exec_end);
  return spans;
}

TraceExporter::TraceExporter(TraceExporterOptions options)
    : options_(std::move(options)), queue_(std::max<size_t>(options_.max_queue, 1)) {
  thread_ = std::thread([this] { Run(); });
}

TraceExporter::~TraceExporter() { Shutdown(Steady::now() + std::chrono::seconds(1)); }

bool TraceExporter::Export(std::unique_ptr<RequestTelemetry> request) {
  return queue_.TryPush(std::move(request));
}

void TraceExporter::Shutdown(Steady::time_point deadline) {
  if (shut_down_.exchange(true)) return;
  deadline_ns_.store(std::max<int64_t>(deadline.time_since_epoch().count(), 1));
  queue_.Close();
  if (thread_.joinable()) thread_.join();
}

bool TraceExporter::PastDeadline() const {
  int64_t d = deadline_ns_.load();
  return d != 0 && Steady::now().time_since_epoch().count() >= d;
}

void TraceExporter::Run() {
  LowerCurrentThreadPriority();
  HttpClient client(HttpClientOptions{.connect_timeout = options_.connect_timeout,
                                      .timeout = options_.export_timeout,
                                      .user_agent = "quiver-otlp-exporter",
                                      .abort_deadline_ns = &deadline_ns_});
  const HttpHeaders headers = {{"Content-Type", "application/json"}};
  std::vector<std::unique_ptr<RequestTelemetry>> batch;
  std::vector<SpanRecord> spans;
  bool warned = false;
  size_t max_batch = std::max<size_t>(options_.max_batch, 1);
  for (;;) {
    batch.clear();
    // Sends when a batch is full, or every schedule_delay with what has come.
    size_t n = queue_.PopBatch(&batch, max_batch, max_batch,
                               Steady::now() + options_.schedule_delay);
    if (n == 0) {
      if (queue_.closed()) return;
      continue;
    }
    if (PastDeadline()) {
      queue_.AddDropped(n);
      continue;
    }
    spans.clear();
    for (const auto& r : batch) {
      for (auto& s : RequestSpans(*r)) spans.push_back(std::move(s));
    }
    std::string body = EncodeOtlpJson(options_.resource, spans);
    auto attempt = [&]() -> StatusOr<int> {
      std::chrono::milliseconds cap(0);
      if (int64_t d = deadline_ns_.load()) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            Steady::duration(d - Steady::now().time_since_epoch().count()));
        if (left.count() <= 0) return Unavailable("shutdown deadline passed");
        cap = left;
      }
      return client.Post(options_.traces_url, headers, body, cap);
    };
    // While shutting down, one attempt each: the deadline bounds the flush.
    auto wait = [this](std::chrono::milliseconds d) {
      return !queue_.WaitClosed(Steady::now() + d);
    };
    StatusOr<int> result = RetryDelivery(attempt, options_.retry, wait);
    if (IsDelivered(result)) {
      exported_spans_.fetch_add(spans.size(), std::memory_order_relaxed);
      warned = false;
    } else {
      failed_spans_.fetch_add(spans.size(), std::memory_order_relaxed);
      if (!warned) {  // once per outage, not once per batch
        spdlog::warn("trace export to {} failed: {}", options_.traces_url,
                     result.ok() ? "HTTP " + std::to_string(*result) : result.status().message());
        warned = true;
      }
    }
  }
}

}  // namespace quiver::observe
