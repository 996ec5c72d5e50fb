// One HTTP(S) request on libcurl (loaded on first use, see curl_api.h): a HEAD, a GET into
// memory (listings, error bodies) or a GET streamed into a file (model downloads), optionally
// signed with AWS SigV4 by libcurl. Blocking; each call uses its own curl handle, so calls from
// different threads are independent.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace quiver::storage {

struct TransferOptions {
  std::chrono::milliseconds connect_timeout{10000};
  // A request that is not a file download (HEAD, listing) must finish within this.
  std::chrono::milliseconds request_timeout{60000};
  // A download is aborted when it moves no byte for this long; large models have no total limit.
  std::chrono::milliseconds stall_timeout{60000};
  bool verify_tls = true;
  std::string ca_bundle;  // PEM file; empty: the system's trust store
  std::string user_agent = "quiver-storage";
};

struct HttpRequest {
  bool head = false;  // HEAD instead of GET
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string aws_sigv4;             // CURLOPT_AWS_SIGV4 ("aws:amz:region:s3"); empty: unsigned
  std::string aws_key_id;            // with aws_sigv4
  std::string aws_secret;
  bool follow_redirects = true;
  // When set, a 2xx body is written to this file (created or truncated); other bodies are kept
  // in memory (up to 64 KiB) for the error message.
  std::filesystem::path output_file;
  // Called as bytes arrive (bytes so far in this request, total when known or 0).
  std::function<void(uint64_t, uint64_t)> on_progress;
  const std::atomic<bool>* cancel = nullptr;  // set: the transfer stops soon after
};

struct HttpResponse {
  int status = 0;
  std::string body;  // in memory (see output_file)
  std::string etag;
  std::string last_modified;
  std::optional<uint64_t> content_length;
  uint64_t bytes_received = 0;
};

// Performs `request`. Any HTTP status is a response; transport failures are kUnavailable naming
// the host and curl's reason ("could not resolve host 'x'", refused, reset, TLS), kDeadlineExceeded
// for timeouts, and kUnavailable "cancelled" when `cancel` was set. libcurl missing: kUnavailable.
StatusOr<HttpResponse> PerformHttp(const HttpRequest& request, const TransferOptions& options);

// host[:port] of a URL, for messages.
std::string UrlHost(const std::string& url);

}  // namespace quiver::storage
