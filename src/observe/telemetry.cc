#include "observe/telemetry.h"

#include "common/system.h"

namespace quiver::observe {

bool IsUsableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

Telemetry::Telemetry(TelemetryOptions options, std::unique_ptr<TraceExporter> exporter,
                     std::unique_ptr<PayloadLogger> payload_logger)
    : options_(options),
      exporter_(std::move(exporter)),
      payload_logger_(std::move(payload_logger)) {
  if (options_.access_log) access_log_ = std::make_unique<AccessLog>(options_.json_log);
}

Telemetry::~Telemetry() { Shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(1)); }

std::unique_ptr<RequestTelemetry> Telemetry::Begin(RequestTelemetry::Transport transport,
                                                   std::string_view method,
                                                   std::string_view target,
                                                   const HeaderLookup& header,
                                                   uint64_t bytes_in) const {
  auto r = std::make_unique<RequestTelemetry>();
  r->start = RequestTelemetry::Steady::now();
  r->start_wall = std::chrono::system_clock::now();
  r->transport = transport;
  r->method = std::string(method);
  r->target = std::string(target);
  r->bytes_in = bytes_in;
  std::string_view id = header("x-request-id");
  r->request_id = IsUsableRequestId(id) ? std::string(id) : NewUuid();

  std::string_view traceparent = header("traceparent");
  std::optional<TraceContext> parent;
  if (!traceparent.empty()) parent = ParseTraceparent(traceparent, header("tracestate"));
  if (exporter_ != nullptr) {
    r->has_trace = true;
    if (parent) {
      r->trace.trace_id = parent->trace_id;
      r->parent_span_id = parent->span_id;
      r->trace.tracestate = std::move(parent->tracestate);
    } else {
      r->trace.trace_id = NewTraceId();
    }
    r->trace.span_id = NewSpanId();
    r->trace.sampled =
        ShouldSample(parent ? &*parent : nullptr, r->trace.trace_id, options_.sampling_ratio);
    r->export_span = r->trace.sampled;
  } else if (parent) {
    // Not tracing: pass the caller's context on unchanged.
    r->has_trace = true;
    r->trace = std::move(*parent);
  }
  if (payload_logger_ != nullptr) {
    std::string_view ce_id = header("ce-id");
    r->event_id = ce_id.empty() ? r->request_id : std::string(ce_id);
  }
  return r;
}

void Telemetry::OnInference(RequestTelemetry& r, std::string_view model,
                            std::string_view version, std::shared_ptr<const std::string> body,
                            std::string_view content_type) const {
  r.model_name = std::string(model);
  r.model_version = std::string(version);
  if (payload_logger_ == nullptr || body == nullptr) return;
  r.log_payload = true;
  if (!payload_logger_->logs_requests()) return;
  PayloadEvent e;
  e.response = false;
  e.id = r.event_id;
  e.time = r.start_wall;
  e.model_name = r.model_name;
  e.content_type = std::string(content_type);
  e.body = std::move(body);
  e.traceparent = r.OutgoingTraceparent();
  e.tracestate = r.OutgoingTracestate();
  payload_logger_->Log(std::move(e));
}

void Telemetry::Finish(std::unique_ptr<RequestTelemetry> r, int status, std::string_view body,
                       std::string_view content_type) const {
  r->end = RequestTelemetry::Steady::now();
  r->status = status;
  if (r->transport == RequestTelemetry::Transport::kHttp) r->bytes_out = body.size();
  if (access_log_ != nullptr) access_log_->Write(*r);
  if (r->log_payload && payload_logger_->logs_responses()) {
    PayloadEvent e;
    e.response = true;
    e.id = r->event_id;
    e.time = std::chrono::system_clock::now();
    e.model_name = r->model_name;
    e.content_type = std::string(content_type);
    e.body = std::make_shared<const std::string>(body);
    e.status = status;
    e.traceparent = r->OutgoingTraceparent();
    e.tracestate = r->OutgoingTracestate();
    payload_logger_->Log(std::move(e));
  }
  if (r->export_span) exporter_->Export(std::move(r));
}

void Telemetry::Shutdown(std::chrono::steady_clock::time_point deadline) {
  FlushAccessLog();
  // One after the other, with the same deadline (the second has kept delivering meanwhile).
  if (exporter_ != nullptr) exporter_->Shutdown(deadline);
  if (payload_logger_ != nullptr) payload_logger_->Shutdown(deadline);
}

}  // namespace quiver::observe
