#include "storage/retry.h"

#include <algorithm>

namespace quiver::storage {

Status HttpFailure(int http_status, const std::string& what, const std::string& detail) {
  std::string message = what + ": HTTP " + std::to_string(http_status);
  if (!detail.empty()) message += " (" + detail + ")";
  if (http_status == 404) return NotFound(message);
  if (http_status == 401 || http_status == 403) {
    return FailedPrecondition(message + ": access denied; check the credentials");
  }
  if (http_status == 408 || http_status == 429 || (http_status >= 500 && http_status != 501)) {
    return Unavailable(message);
  }
  if (http_status == 501) return Unimplemented(message);
  return InvalidArgument(message);
}

bool IsRetryable(const Status& status) {
  return status.code() == StatusCode::kUnavailable ||
         status.code() == StatusCode::kDeadlineExceeded;
}

std::chrono::milliseconds BackoffAfter(const RetryPolicy& policy, int attempt) {
  auto wait = policy.initial_backoff;
  for (int i = 1; i < attempt && wait < policy.max_backoff; ++i) wait *= 2;
  return std::min(wait, policy.max_backoff);
}

Status RunWithRetries(const RetryPolicy& policy, const Sleeper& sleeper,
                      const std::atomic<bool>* cancel, const std::function<Status()>& attempt) {
  for (int n = 1;; ++n) {
    Status status = attempt();
    if (status.ok() || !IsRetryable(status) || n >= policy.max_attempts) return status;
    if (cancel != nullptr && cancel->load()) return status;
    sleeper(BackoffAfter(policy, n));
    if (cancel != nullptr && cancel->load()) return status;
  }
}

}  // namespace quiver::storage
