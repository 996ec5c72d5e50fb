// The HTTP/1.1 load engine: sender threads with one Asio event loop each; every concurrent stream
// owns one keep-alive connection and reuses its read buffer and the request bytes (built once,
// sent as they are). The client's cost per request is one send, one wait for readability, one
// read and a parse by Beast's parser that stores no header field (so nothing is allocated).
// Requests time out on one coarse sweep per thread, as the server does, rather than a timer per
// request.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "loadgen/http_fetch.h"
#include "loadgen/load_engine.h"

namespace quiver::loadgen {

struct HttpLoadOptions {
  HttpEndpoint endpoint;
  // Complete HTTP requests (see HttpPostRequest), sent round-robin; at least one.
  std::shared_ptr<const std::vector<std::string>> requests;
  EngineOptions engine;
};

// A 2xx answer is a success; anything else, or a failed connect/write/read, is an error (and a
// failed connection is reopened).
std::unique_ptr<LoadEngine> CreateHttpLoadEngine(HttpLoadOptions options);

}  // namespace quiver::loadgen
