#include "observe/telemetry_metrics.h"

#include "observe/prometheus_text.h"

namespace quiver::observe {
namespace {

void WriteCounter(PrometheusWriter& w, std::string_view name, std::string_view help, uint64_t v) {
  w.Family(name, help, MetricType::kCounter);
  w.Sample(name, {}, {}, v);
}

}  // namespace

void AddTelemetryMetrics(MetricsRegistry* registry, const Telemetry* telemetry) {
  if (telemetry == nullptr) return;
  registry->AddCollector([telemetry](PrometheusWriter& w) {
    if (const PayloadLogger* p = telemetry->payload_logger()) {
      WriteCounter(w, "quiver_payload_log_delivered_total",
              "Payload-log events (CloudEvents) the sink accepted", p->delivered());
      WriteCounter(w, "quiver_payload_log_failed_total",
              "Payload-log events the sink refused or that failed after every retry",
              p->failed());
      WriteCounter(w, "quiver_payload_log_dropped_total",
              "Payload-log events dropped unsent: the queue was full, or shutdown came first",
              p->dropped());
    }
    if (const TraceExporter* e = telemetry->exporter()) {
      WriteCounter(w, "quiver_trace_spans_exported_total", "Spans the OTLP endpoint accepted",
              e->exported_spans());
      WriteCounter(w, "quiver_trace_spans_failed_total",
              "Spans whose export failed after every retry", e->failed_spans());
      WriteCounter(w, "quiver_trace_requests_dropped_total",
              "Sampled requests whose spans were dropped unsent: the export queue was full, "
              "or shutdown came first",
              e->dropped());
    }
  });
}

}  // namespace quiver::observe
