// HttpClient: an asynchronous HTTP/1.1 client for proxying, on Boost.Beast and Asio. One client
// belongs to one io_context and is used only from the thread that runs it (no locks): it keeps
// a pool of keep-alive connections per backend (host:port), enforces timeouts with one sweep
// timer (no per-operation timers, as the server does) and buffers response bodies up to a limit.
// Ownership: the client owns its connections; callbacks run on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "http/server.h"

namespace quiver::http {

using ResponseMessage = boost::beast::http::response<boost::beast::http::string_body>;

// Where a request goes. `key` ("host:port") names the connection pool; build with Make.
struct Backend {
  std::string host;
  uint16_t port = 0;
  std::string key;

  static Backend Make(std::string host, uint16_t port);
  // Parses "host:port" (IPv6 as "[::1]:8080"); the error names the text and what was expected.
  static StatusOr<Backend> Parse(std::string_view text);
};

struct ClientOptions {
  // Open connections per backend, busy or idle; further requests wait (FIFO) for one to free.
  size_t max_connections_per_backend = 1024;
  // Idle keep-alive connections kept per backend; more are closed when they become idle.
  size_t max_idle_per_backend = 128;
  std::chrono::milliseconds connect_timeout{5'000};
  // An idle connection is closed after this long; below the backend's own keep-alive timeout
  // (65 s for quiver serve and KServe) so that we close first, not the backend under a request.
  std::chrono::milliseconds idle_timeout{55'000};
  size_t max_response_body_bytes = 64u << 20;
  size_t max_response_header_bytes = 64u << 10;
  // Deadlines are checked this often: a timeout fires up to one interval late.
  std::chrono::milliseconds sweep_interval{20};
};

// The outcome of one Send.
struct ClientResult {
  // OK when a whole response was read (any HTTP status). Otherwise kUnavailable (connect
  // refused, reset, backend closed), kDeadlineExceeded (connect or request timeout),
  // kResourceExhausted (response larger than the limit) or kInternal (malformed response);
  // the message names the backend.
  Status status;
  // False when no byte of the request reached the backend: the request may be sent elsewhere.
  // Then `unsent` gives the request back, untouched.
  bool request_written = false;
  std::optional<Message> unsent;
  ResponseMessage response;
};

using ClientCallback = std::function<void(ClientResult&& result)>;

class HttpClient {
 public:
  HttpClient(boost::asio::io_context& io, ClientOptions options);
  // Closes every connection. Call on the io_context's thread, or when it no longer runs.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` to `backend` on an idle connection or a new one; `done` is called exactly
  // once on the io_context's thread (never inside Send). A reused connection that the backend
  // closed while it was idle is detected before writing and replaced by a fresh one; an
  // idempotent request (GET, HEAD, PUT, DELETE, OPTIONS) that fails on a reused connection
  // before any answer byte is retried once on a fresh connection. `timeout` covers everything
  // (waiting for a connection, connecting, writing, reading). Content-Length is set here; Host
  // is set to the backend when absent. Call on the io_context's thread.
  void Send(const Backend& backend, Message request, std::chrono::milliseconds timeout,
            ClientCallback done);

  // Closes all connections and fails waiting requests (kUnavailable); later Sends fail at once.
  void Close();

  // For tests and metrics: connections open (busy or idle) and idle to one backend.
  size_t open_connections(const Backend& backend) const;
  size_t idle_connections(const Backend& backend) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace quiver::http
