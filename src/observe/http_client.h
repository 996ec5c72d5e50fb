// HttpClient: blocking HTTP POSTs for background delivery threads (OTLP export, payload-log
// sinks), on libcurl. One client keeps its connection open between calls (keep-alive), so a
// thread that owns a client reuses one connection per host. Not thread-safe: one client per
// thread. Never use it on a request path: a call blocks up to its timeout.
// libcurl (libcurl.so.4) is loaded on first use instead of linked, so a server that sends
// nothing does not carry it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace quiver::observe {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds timeout{10000};  // whole call, connect included
  std::string user_agent = "quiver";
  // When set: a steady-clock deadline (nanoseconds since the clock's epoch, 0 for none) that
  // another thread may set at any time, e.g. on shutdown; a call in progress is aborted within
  // about a second once it has passed.
  const std::atomic<int64_t>* abort_deadline_ns = nullptr;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// OK when libcurl can be loaded; otherwise why not (checked at start-up by those who will need
// it, so that a missing library is a clear error rather than failed deliveries).
Status HttpClientAvailable();

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // POSTs `body` to `url` (http or https) with `headers` and returns the response's HTTP status
  // (any status, 2xx or not). Transport failures (refused, reset, DNS, timeout) are kUnavailable
  // with curl's reason. `timeout` > 0 caps this call below options.timeout.
  StatusOr<int> Post(const std::string& url, const HttpHeaders& headers, std::string_view body,
                     std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

 private:
  HttpClientOptions options_;
  void* curl_ = nullptr;  // CURL*, kept for connection reuse
};

// Retries of one delivery: up to `max_retries` more attempts after the first, waiting
// initial_backoff, then twice that each time, at most max_backoff.
struct RetryPolicy {
  int max_retries = 3;
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};

// Runs `attempt` until it returns a 2xx status, fails for good (see IsRetryableDelivery), or the
// retries run out; returns the last outcome. Between attempts it calls `wait(backoff)`, which
// sleeps and returns false to stop retrying (a shutdown). `attempts` (optional) receives the
// number of attempts made.
StatusOr<int> RetryDelivery(const std::function<StatusOr<int>()>& attempt,
                            const RetryPolicy& policy,
                            const std::function<bool(std::chrono::milliseconds)>& wait,
                            int* attempts = nullptr);

inline bool IsDelivered(const StatusOr<int>& status) {
  return status.ok() && *status >= 200 && *status < 300;
}

// Whether a delivery that ended with `status` (an HTTP status, or a transport error) may succeed
// when retried: transport errors, 408, 429 and 5xx except 501. Other 4xx are final.
bool IsRetryableDelivery(const StatusOr<int>& status);

}  // namespace quiver::observe
