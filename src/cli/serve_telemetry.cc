#include "cli/serve_telemetry.h"

#include <spdlog/spdlog.h>

#include <charconv>

namespace quiver {
namespace {

// A non-negative integer from the environment, or `fallback` when unset or malformed.
int64_t EnvInt(const Environment& env, const char* name, int64_t fallback) {
  std::string v = env(name);
  int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || out < 0) {
    if (!v.empty()) spdlog::warn("ignoring {}='{}': expected a non-negative integer", name, v);
    return fallback;
  }
  return out;
}

// The sampling ratio from OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG. Every sampler is
// applied parent-based: an incoming sampled flag always wins.
StatusOr<double> EnvSamplingRatio(const Environment& env) {
  std::string sampler = env("OTEL_TRACES_SAMPLER");
  if (sampler.empty() || sampler == "always_on" || sampler == "parentbased_always_on") return 1.0;
  if (sampler == "always_off" || sampler == "parentbased_always_off") return 0.0;
  if (sampler == "traceidratio" || sampler == "parentbased_traceidratio") {
    std::string arg = env("OTEL_TRACES_SAMPLER_ARG");
    if (arg.empty()) return 1.0;
    char* end = nullptr;
    double r = std::strtod(arg.c_str(), &end);
    if (end == arg.c_str() || *end != '\0' || !(r >= 0.0 && r <= 1.0)) {
      return InvalidArgument("OTEL_TRACES_SAMPLER_ARG: expected a ratio in [0, 1], got '" + arg +
                             "'");
    }
    return r;
  }
  return InvalidArgument("OTEL_TRACES_SAMPLER: '" + sampler +
                         "' is not supported (always_on, always_off, traceidratio and their "
                         "parentbased_ forms are)");
}

}  // namespace

std::string GetEnv(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

void AddTelemetryFlags(CLI::App* cmd, TelemetryFlags* f) {
  cmd->add_option("--access-log,--access_log", f->access_log,
                  "One line per request (id, method, path, status, bytes, queue/compute/total "
                  "ms) at info level, in --log-format")
      ->capture_default_str();
  cmd->add_option("--trace-endpoint,--trace_endpoint", f->trace_endpoint,
                  "OTLP/HTTP endpoint spans are exported to as JSON ({endpoint}/v1/traces); "
                  "default $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or $OTEL_EXPORTER_OTLP_ENDPOINT; "
                  "none: tracing off");
  cmd->add_option("--trace-sampling-ratio,--trace_sampling_ratio", f->trace_sampling_ratio,
                  "Share of new traces sampled, 0..1 (requests with a traceparent follow its "
                  "sampled flag); default from $OTEL_TRACES_SAMPLER[_ARG], else 1")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--trace-service-name,--trace_service_name", f->trace_service_name,
                  "service.name of exported spans; default $OTEL_SERVICE_NAME, else quiver");
  cmd->add_option("--log-url,--log_url", f->log_url,
                  "Payload logging: where each inference request and response go as "
                  "CloudEvents: an http(s) URL (binary mode) or file:///path (JSON lines)");
  cmd->add_option("--log-mode,--log_mode", f->log_mode, "Payload logging: all|request|response")
      ->capture_default_str()
      ->check(CLI::IsMember({"all", "request", "response"}));
  cmd->add_option("--log-service-name,--log_service_name,--inference-service", f->log_service_name,
                  "Payload logging: the ce-inferenceservicename extension (default: the model's "
                  "name)");
  cmd->add_option("--log-namespace,--log_namespace", f->log_namespace,
                  "Payload logging: the ce-namespace extension (default $POD_NAMESPACE, else "
                  "default)");
  cmd->add_option("--log-component,--log_component", f->log_component,
                  "Payload logging: the ce-component extension")
      ->capture_default_str();
  cmd->add_option("--log-endpoint,--log_endpoint", f->log_endpoint,
                  "Payload logging: the ce-endpoint extension")
      ->capture_default_str();
  cmd->add_option("--log-queue-size,--log_queue_size", f->log_queue_size,
                  "Payload logging: events waiting for delivery; beyond it they are dropped "
                  "(and counted)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  cmd->add_option("--log-workers,--log_workers", f->log_workers,
                  "Payload logging: concurrent deliveries to an HTTP sink")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--log-retries,--log_retries", f->log_retries,
                  "Payload logging: retries of a failed delivery (connection errors, 408, 429, "
                  "5xx)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  cmd->add_option("--log-retry-backoff,--log_retry_backoff", f->log_retry_backoff_ms,
                  "Payload logging: milliseconds before the first retry, doubling up to 5 s")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{60'000}));
  cmd->add_option("--log-timeout,--log_timeout", f->log_timeout_s,
                  "Payload logging: seconds one delivery attempt may take")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

StatusOr<std::unique_ptr<observe::Telemetry>> MakeTelemetry(const TelemetryFlags& f,
                                                            const Environment& env,
                                                            bool json_log, int http_port,
                                                            std::string version) {
  // With --log-level above info the access log could not print anything: then it costs nothing.
  observe::TelemetryOptions options{
      .access_log = f.access_log && spdlog::default_logger()->should_log(spdlog::level::info),
      .json_log = json_log};

  std::unique_ptr<observe::TraceExporter> exporter;
  std::string traces_url;
  if (!f.trace_endpoint.empty()) {
    traces_url = observe::OtlpTracesUrl(f.trace_endpoint);
  } else if (std::string e = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); !e.empty()) {
    traces_url = e;  // the signal-specific variable is used as it is (OTLP exporter spec)
  } else if (std::string e = env("OTEL_EXPORTER_OTLP_ENDPOINT"); !e.empty()) {
    traces_url = observe::OtlpTracesUrl(e);
  }
  if (!traces_url.empty()) {
    if (!traces_url.starts_with("http://") && !traces_url.starts_with("https://")) {
      return InvalidArgument("--trace-endpoint: expected an http:// or https:// URL, got '" +
                             traces_url + "'");
    }
    QUIVER_RETURN_IF_ERROR(observe::HttpClientAvailable().WithPrefix("tracing"));
    if (f.trace_sampling_ratio >= 0) {
      options.sampling_ratio = f.trace_sampling_ratio;
    } else {
      QUIVER_ASSIGN_OR_RETURN(options.sampling_ratio, EnvSamplingRatio(env));
    }
    observe::TraceExporterOptions t;
    t.traces_url = traces_url;
    t.resource.service_name = f.trace_service_name;
    if (t.resource.service_name.empty()) t.resource.service_name = env("OTEL_SERVICE_NAME");
    if (t.resource.service_name.empty()) t.resource.service_name = "quiver";
    t.resource.service_version = version;
    // OpenTelemetry's batch span processor variables, in milliseconds and counts.
    t.schedule_delay = std::chrono::milliseconds(
        EnvInt(env, "OTEL_BSP_SCHEDULE_DELAY", t.schedule_delay.count()));
    t.export_timeout = std::chrono::milliseconds(
        EnvInt(env, "OTEL_BSP_EXPORT_TIMEOUT", t.export_timeout.count()));
    t.max_queue = static_cast<size_t>(EnvInt(env, "OTEL_BSP_MAX_QUEUE_SIZE", t.max_queue));
    t.max_batch =
        static_cast<size_t>(EnvInt(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", t.max_batch));
    spdlog::info("tracing: exporting spans to {} as service {} (sampling ratio {} for new traces)",
                 t.traces_url, t.resource.service_name, options.sampling_ratio);
    exporter = std::make_unique<observe::TraceExporter>(std::move(t));
  } else if (f.trace_sampling_ratio >= 0) {
    return InvalidArgument("--trace-sampling-ratio needs --trace-endpoint (or "
                           "$OTEL_EXPORTER_OTLP_ENDPOINT)");
  }

  std::unique_ptr<observe::PayloadLogger> payload_logger;
  if (!f.log_url.empty()) {
    observe::PayloadLogOptions p;
    p.url = f.log_url;
    QUIVER_ASSIGN_OR_RETURN(p.mode, observe::ParsePayloadLogMode(f.log_mode));
    p.source = "http://localhost:" + std::to_string(http_port) + "/";
    p.inference_service_name = f.log_service_name;
    p.namespace_name = f.log_namespace;
    if (p.namespace_name.empty()) p.namespace_name = env("POD_NAMESPACE");
    if (p.namespace_name.empty()) p.namespace_name = "default";
    p.component = f.log_component;
    p.endpoint = f.log_endpoint;
    p.max_queue = f.log_queue_size;
    p.workers = f.log_workers;
    p.retry.max_retries = f.log_retries;
    p.retry.initial_backoff = std::chrono::milliseconds(f.log_retry_backoff_ms);
    p.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.log_timeout_s * 1e3));
    if (!f.log_url.starts_with("file://")) {
      QUIVER_RETURN_IF_ERROR(observe::HttpClientAvailable().WithPrefix("--log-url"));
    }
    auto created = observe::PayloadLogger::Create(std::move(p));
    if (!created.ok()) return created.status();
    payload_logger = std::move(created).value();
    spdlog::info("payload logging: {} events to {}", f.log_mode, f.log_url);
  }

  if (!options.access_log && exporter == nullptr && payload_logger == nullptr) {
    return std::unique_ptr<observe::Telemetry>();
  }
  return std::make_unique<observe::Telemetry>(options, std::move(exporter),
                                              std::move(payload_logger));
}

}  // namespace quiver
