// `quiver serve`'s observability flags (access log, tracing, payload logging), and the
// Telemetry they configure. OpenTelemetry's standard environment variables are honoured when
// the flags are absent.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "common/status.h"
#include "observe/telemetry.h"

namespace quiver {

struct TelemetryFlags {
  bool access_log = true;
  // Tracing.
  std::string trace_endpoint;
  double trace_sampling_ratio = -1;  // < 0: not given
  std::string trace_service_name;
  // Payload logging (KServe's agent flags where it has them).
  std::string log_url;
  std::string log_mode = "all";
  std::string log_service_name;
  std::string log_namespace;
  std::string log_component = "predictor";
  std::string log_endpoint = "default";
  size_t log_queue_size = 4096;
  int log_workers = 2;
  int log_retries = 3;
  int64_t log_retry_backoff_ms = 100;
  double log_timeout_s = 5;
};

void AddTelemetryFlags(CLI::App* cmd, TelemetryFlags* flags);

// Null when everything is off (no access log, no tracing, no payload logging). `environment`
// reads a variable (std::getenv in production); `json_log`: --log-format json; `http_port` and
// `version` name this server in CloudEvents and spans. Logs what it set up.
using Environment = std::function<std::string(const char* name)>;
StatusOr<std::unique_ptr<observe::Telemetry>> MakeTelemetry(const TelemetryFlags& flags,
                                                            const Environment& environment,
                                                            bool json_log, int http_port,
                                                            std::string version);

// The standard process environment.
std::string GetEnv(const char* name);

}  // namespace quiver
