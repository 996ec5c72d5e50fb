// Telemetry: the per-request side of `quiver serve`'s observability, in one place for the
// frontends: the request id (x-request-id), the W3C trace context and sampling, the access log,
// span export over OTLP and payload logging. A frontend calls Begin when a request arrives,
// OnInference once the request is known to be an inference, and Finish when its answer leaves.
// When nothing is switched on the server holds no Telemetry at all, so a request pays one
// null-pointer branch. Thread-safe; RequestTelemetry values travel with their request.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "observe/access_log.h"
#include "observe/payload_log.h"
#include "observe/request_telemetry.h"
#include "observe/trace_exporter.h"

namespace quiver::observe {

struct TelemetryOptions {
  bool access_log = false;
  bool json_log = false;        // --log-format json
  double sampling_ratio = 1.0;  // for root spans (requests without a traceparent)
};

class Telemetry {
 public:
  // `exporter` (tracing) and `payload_logger` may be null (off).
  Telemetry(TelemetryOptions options, std::unique_ptr<TraceExporter> exporter,
            std::unique_ptr<PayloadLogger> payload_logger);
  ~Telemetry();

  // A header of the incoming request by lower-case name; empty when absent.
  using HeaderLookup = std::function<std::string_view(std::string_view name)>;

  // A request arrived. Takes x-request-id (or makes one), traceparent/tracestate (a valid
  // parent keeps its trace id and sampled flag; otherwise a new trace is sampled at the ratio)
  // and, for payload logging, ce-id (the events' id; else the request id).
  std::unique_ptr<RequestTelemetry> Begin(RequestTelemetry::Transport transport,
                                          std::string_view method, std::string_view target,
                                          const HeaderLookup& header, uint64_t bytes_in) const;

  // The request is an inference of `model`: recorded for the log and spans, and with payload
  // logging the request event is queued (the body is shared, not copied). A null body (gRPC)
  // means no payload logging for this request.
  void OnInference(RequestTelemetry& request, std::string_view model, std::string_view version,
                   std::shared_ptr<const std::string> body, std::string_view content_type) const;

  // The answer is leaving with `status` (HTTP status, or gRPC code) and `body`: writes the
  // access-log line, queues the response event (copying the body) and hands the spans to the
  // exporter. Never blocks on a sink or the exporter. For HTTP bytes_out is the body's size;
  // gRPC callers set request->bytes_out themselves.
  void Finish(std::unique_ptr<RequestTelemetry> request, int status, std::string_view body,
              std::string_view content_type) const;

  // Writes out buffered access-log lines.
  void FlushAccessLog() const {
    if (access_log_ != nullptr) access_log_->Flush();
  }

  // Flushes the access log, spans and events (until `deadline`) and stops the background
  // threads.
  void Shutdown(std::chrono::steady_clock::time_point deadline);

  bool tracing() const { return exporter_ != nullptr; }
  TraceExporter* exporter() const { return exporter_.get(); }
  PayloadLogger* payload_logger() const { return payload_logger_.get(); }
  bool access_log() const { return access_log_ != nullptr; }

 private:
  TelemetryOptions options_;
  std::unique_ptr<TraceExporter> exporter_;
  std::unique_ptr<PayloadLogger> payload_logger_;
  std::unique_ptr<AccessLog> access_log_;
};

// x-request-id values taken from clients: 1 to 128 visible ASCII characters; others are
// replaced by a new id.
bool IsUsableRequestId(std::string_view id);

}  // namespace quiver::observe
