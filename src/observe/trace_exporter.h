// TraceExporter: sends the spans of finished requests to an OTLP/HTTP endpoint (JSON encoding)
// in batches, from one background thread. Requests hand over their RequestTelemetry through a
// bounded queue and never wait: when the queue is full the request's spans are dropped and
// counted. The spans themselves (server, queue, execute) are built on the export thread, so
// the request path pays for one queue push. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "observe/bounded_queue.h"
#include "observe/http_client.h"
#include "observe/otlp_json.h"
#include "observe/request_telemetry.h"

namespace quiver::observe {

struct TraceExporterOptions {
  std::string traces_url;  // the full URL: {endpoint}/v1/traces
  OtlpResource resource;
  // OpenTelemetry's batch span processor settings (OTEL_BSP_*), counted in requests.
  size_t max_queue = 2048;
  size_t max_batch = 512;
  std::chrono::milliseconds schedule_delay{500};
  std::chrono::milliseconds export_timeout{10000};
  std::chrono::milliseconds connect_timeout{2000};
  RetryPolicy retry{.max_retries = 2,
                    .initial_backoff = std::chrono::milliseconds(100),
                    .max_backoff = std::chrono::milliseconds(2000)};
};

// The spans of one finished request: the server span (SERVER kind, the request's own span id,
// child of the incoming parent if any), and as its children "queue" (from enqueued to the start
// of execution, or to the end when it never ran) and "execute" when the request had them.
std::vector<SpanRecord> RequestSpans(const RequestTelemetry& request);

// "{endpoint}/v1/traces" unless `endpoint` already ends with /v1/traces; a trailing '/' of the
// endpoint is not doubled.
std::string OtlpTracesUrl(std::string_view endpoint);

class TraceExporter {
 public:
  explicit TraceExporter(TraceExporterOptions options);
  // Shuts down (flushing for at most one second) if Shutdown was not called.
  ~TraceExporter();
  TraceExporter(const TraceExporter&) = delete;
  TraceExporter& operator=(const TraceExporter&) = delete;

  // Queues a finished, sampled request for export. Never blocks; false (and counted in
  // dropped()) when the queue is full or the exporter is shut down.
  bool Export(std::unique_ptr<RequestTelemetry> request);

  // Exports what is queued, trying until `deadline` (what is left then is dropped), and joins
  // the thread. Idempotent.
  void Shutdown(std::chrono::steady_clock::time_point deadline);

  uint64_t exported_spans() const { return exported_spans_.load(std::memory_order_relaxed); }
  // Spans whose export failed for good (non-retryable answer, or retries exhausted).
  uint64_t failed_spans() const { return failed_spans_.load(std::memory_order_relaxed); }
  // Requests whose spans never left: refused by a full queue, or still queued at the deadline.
  uint64_t dropped() const { return queue_.dropped(); }
  const TraceExporterOptions& options() const { return options_; }

 private:
  void Run();
  bool PastDeadline() const;

  const TraceExporterOptions options_;
  BoundedQueue<std::unique_ptr<RequestTelemetry>> queue_;
  std::atomic<int64_t> deadline_ns_{0};  // steady-clock deadline once shutting down, else 0
  std::atomic<uint64_t> exported_spans_{0};
  std::atomic<uint64_t> failed_spans_{0};
  std::atomic<bool> shut_down_{false};
  std::thread thread_;
};

}  // namespace quiver::observe
