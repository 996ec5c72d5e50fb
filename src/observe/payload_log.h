// PayloadLogger: KServe's inference logger inside the server. Each inference request and its
// response become CloudEvents (type org.kubeflow.serving.inference.request / .response, one id
// shared by the pair, KServe's extensions inferenceservicename, namespace, component and
// endpoint) delivered to a sink: an HTTP(S) URL receiving them in binary mode (ce-* headers,
// the body is the payload with its content type), or a local file (file:///path) receiving one
// structured-mode JSON event per line. Unlike KServe, failed responses are logged too, with
// their HTTP status in the `httpstatus` extension (ce-httpstatus).
//
// Delivery is asynchronous: Log() puts the event in a bounded queue and returns; background
// workers deliver it, retrying with exponential backoff. A slow or dead sink never slows
// requests: when the queue is full, events are dropped and counted. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "observe/bounded_queue.h"
#include "observe/http_client.h"

namespace quiver::observe {

// KServe's logger modes (the agent's --log-mode).
enum class PayloadLogMode { kAll, kRequest, kResponse };
StatusOr<PayloadLogMode> ParsePayloadLogMode(std::string_view mode);

inline constexpr std::string_view kRequestEventType = "org.kubeflow.serving.inference.request";
inline constexpr std::string_view kResponseEventType = "org.kubeflow.serving.inference.response";

struct PayloadLogOptions {
  std::string url;  // http://..., https://... or file:///absolute/path
  PayloadLogMode mode = PayloadLogMode::kAll;
  std::string source = "http://localhost:8080/";  // ce-source
  // KServe's extensions. An empty inference_service_name means the event's model name.
  std::string inference_service_name;
  std::string namespace_name = "default";
  std::string component = "predictor";
  std::string endpoint = "default";
  size_t max_queue = 4096;              // events waiting for delivery
  size_t max_queue_bytes = 64u << 20;   // their payload bytes
  int workers = 2;                      // concurrent deliveries to an HTTP sink (KServe: 5)
  RetryPolicy retry;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{5000};  // one delivery attempt
};

struct PayloadEvent {
  bool response = false;  // request or response event
  std::string id;         // shared by a request and its response
  std::chrono::system_clock::time_point time;
  std::string model_name;
  std::string content_type;  // of the body; empty means application/json
  std::shared_ptr<const std::string> body;
  int status = 0;  // response events: the HTTP status sent to the client
  std::string traceparent;  // the request's trace context, carried by the delivery
  std::string tracestate;
};

// The HTTP headers of `event` in CloudEvents binary mode: Content-Type, ce-specversion, ce-id,
// ce-source, ce-type, ce-time, ce-inferenceservicename, ce-namespace, ce-component,
// ce-endpoint, ce-httpstatus (responses), and traceparent/tracestate when the request had them.
HttpHeaders CloudEventHeaders(const PayloadEvent& event, const PayloadLogOptions& options);

// `event` as one structured-mode CloudEvent JSON object and a newline. A JSON body (valid, with
// a JSON content type) is embedded minified as `data`; anything else is `data_base64`.
std::string CloudEventJsonLine(const PayloadEvent& event, const PayloadLogOptions& options);

class PayloadLogger {
 public:
  // Checks the URL (http, https or file scheme; a file is opened for appending) and starts the
  // workers.
  static StatusOr<std::unique_ptr<PayloadLogger>> Create(PayloadLogOptions options);
  ~PayloadLogger();  // Shutdown with a one-second deadline if not shut down yet
  PayloadLogger(const PayloadLogger&) = delete;
  PayloadLogger& operator=(const PayloadLogger&) = delete;

  bool logs_requests() const { return options_.mode != PayloadLogMode::kResponse; }
  bool logs_responses() const { return options_.mode != PayloadLogMode::kRequest; }

  // Queues `event` for delivery. Never blocks; false (counted in dropped()) when the queue is
  // full or the logger is shut down.
  bool Log(PayloadEvent event);

  // Delivers what is queued until `deadline` (one attempt each, no more retries), drops the
  // rest, and joins the workers. Idempotent.
  void Shutdown(std::chrono::steady_clock::time_point deadline);

  uint64_t delivered() const { return delivered_.load(std::memory_order_relaxed); }
  // Events the sink did not take after every retry (or refused with a non-retryable status).
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }
  // Events never sent: refused by a full queue, or still queued at the shutdown deadline.
  uint64_t dropped() const { return queue_.dropped(); }
  const PayloadLogOptions& options() const { return options_; }

 private:
  explicit PayloadLogger(PayloadLogOptions options);
  void RunHttp();
  void RunFile();
  // Remaining time before the shutdown deadline; nullopt when not shutting down.
  std::optional<std::chrono::milliseconds> TimeLeft() const;
  void CountFailure(const std::string& why);

  const PayloadLogOptions options_;
  BoundedQueue<PayloadEvent> queue_;
  std::FILE* file_ = nullptr;  // file sink, written by its one worker only
  std::atomic<int64_t> deadline_ns_{0};
  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<bool> outage_warned_{false};
  std::atomic<bool> shut_down_{false};
  std::vector<std::thread> workers_;
};

}  // namespace quiver::observe
