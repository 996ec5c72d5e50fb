// ApiClient: a blocking HTTP client for the control plane API, used by the CLI verbs. On
// libcurl (one easy handle per client, so calls reuse one connection). Not thread-safe: one
// client per thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace quiver::api {

struct ApiClientOptions {
  std::string server;  // "http://127.0.0.1:7070"
  std::string token;   // sent as a bearer token when non-empty
  std::chrono::milliseconds timeout{30'000};
};

struct ApiReply {
  int status = 0;
  std::string body;
  std::string content_type;
};

class ApiClient {
 public:
  explicit ApiClient(ApiClientOptions options);
  ~ApiClient() = default;
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // Sends `method path` with a JSON body (when non-empty). Any HTTP answer is a reply, whatever
  // its status; an error means no answer (server down, refused, timed out).
  StatusOr<ApiReply> Call(std::string_view method, std::string_view path,
                          std::string_view json_body = {});

  const std::string& server() const { return options_.server; }

 private:
  ApiClientOptions options_;
};

}  // namespace quiver::api
