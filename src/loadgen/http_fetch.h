// Where a v2 REST server is, and a blocking GET for the few requests a benchmark makes outside
// the load (model metadata, /metrics). Not for the load itself: see http_load.h.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace quiver::loadgen {

struct HttpEndpoint {
  std::string host;
  std::string port;
  std::string base_path;  // "" or "/prefix" (a gateway path in front of the server)

  // "host:port" for the Host header (the port is always given).
  std::string HostHeader() const { return host + ":" + port; }
  std::string ToString() const { return "http://" + host + ":" + port + base_path; }
};

// Accepts `host:port`, `host` (port 80), `http://host:port/prefix` and `[v6addr]:port`.
// https:// is refused with a message (no TLS in the load generator).
StatusOr<HttpEndpoint> ParseHttpUrl(std::string_view url);

struct HttpReply {
  int status = 0;
  std::string body;
};

// GETs base_path + path; the whole exchange has `timeout`. Connection errors become kUnavailable
// naming the server, a timeout kDeadlineExceeded. Thread-safe (uses its own I/O context).
StatusOr<HttpReply> HttpGet(const HttpEndpoint& endpoint, std::string_view path,
                            std::chrono::milliseconds timeout);

}  // namespace quiver::loadgen
