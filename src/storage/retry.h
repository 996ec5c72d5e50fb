// Retries of storage requests: which failures are worth another attempt (connection errors,
// timeouts, 5xx, 408, 429) and which are final (404, 403, other 4xx, bad archives), and the
// exponential backoff between attempts. The sleeper is injected so that tests do not sleep.
// Stateless functions; thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"

namespace quiver::storage {

struct RetryPolicy {
  int max_attempts = 4;  // the first attempt included; 1 disables retries
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{10000};
};

using Sleeper = std::function<void(std::chrono::milliseconds)>;

// The Status for an HTTP answer `http_status` that is not a success, with `what` (e.g.
// "GET https://host/m.bin") and `detail` (e.g. S3's error code) in the message:
// 404 -> kNotFound, 401/403 -> kFailedPrecondition (access denied), 408/429/5xx except 501 ->
// kUnavailable (transient), 501 -> kUnimplemented, other codes -> kInvalidArgument.
Status HttpFailure(int http_status, const std::string& what, const std::string& detail);

// Transient: kUnavailable and kDeadlineExceeded (what HttpFailure and the transport produce for
// failures that another attempt may cure).
bool IsRetryable(const Status& status);

// The wait before attempt number `attempt` + 1 (attempt counts from 1): initial_backoff doubled
// per attempt, at most max_backoff.
std::chrono::milliseconds BackoffAfter(const RetryPolicy& policy, int attempt);

// Runs `attempt` until it succeeds, fails for good, the attempts run out or `cancel` (may be
// null) is set; sleeps through `sleeper` in between. Returns the last outcome.
Status RunWithRetries(const RetryPolicy& policy, const Sleeper& sleeper,
                      const std::atomic<bool>* cancel, const std::function<Status()>& attempt);

}  // namespace quiver::storage
