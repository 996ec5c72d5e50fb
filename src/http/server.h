// HttpServer: the HTTP/1.1 frontend, on Boost.Beast and Asio, used the fast way: one io_context
// per I/O thread, a reused read buffer per connection, and no per-operation timers (a sweep per
// thread enforces one coarse deadline per connection). Handlers are called on the I/O thread
// that read the request; they answer through a Responder, at once or later from any thread.
// Thread-safety: Create/Run/Shutdown may be called from any thread; handlers run concurrently
// on different I/O threads.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace quiver::http {

using Message = boost::beast::http::request<boost::beast::http::string_body>;

// One request as read from the wire. The handler may move the body out.
struct Request {
  Message message;

  std::string_view method() const {
    auto m = message.method_string();
    return {m.data(), m.size()};
  }
  std::string_view target() const {
    auto t = message.target();
    return {t.data(), t.size()};
  }
  std::string& body() { return message.body(); }
  // Value of a header, empty when absent (case-insensitive name).
  std::string_view header(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

class Connection;

// Sees a response just before it is sent, on the thread that calls Send (it may add headers).
// Used for per-request telemetry (access log, tracing, payload logging).
class ResponseObserver {
 public:
  virtual ~ResponseObserver() = default;
  virtual void OnResponse(Response& response) = 0;
};

// A one-shot handle to answer one request. Send may be called from any thread, exactly once;
// a Responder dropped without Send answers 500 so that a client never hangs.
class Responder {
 public:
  explicit Responder(std::shared_ptr<Connection> conn) : conn_(std::move(conn)) {}
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept = default;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  void Send(Response response);

  // Attaches the observer Send will call (one per Responder; it is destroyed after the call).
  void Observe(std::unique_ptr<ResponseObserver> observer) { observer_ = std::move(observer); }
  ResponseObserver* observer() const { return observer_.get(); }

 private:
  std::shared_ptr<Connection> conn_;
  std::unique_ptr<ResponseObserver> observer_;
};

using Handler = std::function<void(Request&& request, Responder responder)>;

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;  // 0 picks a free port
  int io_threads = 0;    // 0: one per available CPU
  size_t max_body_bytes = 64u << 20;
  size_t max_header_bytes = 16u << 10;
  // A request must arrive whole within read_timeout of its first byte; a connection with no
  // request in progress is closed after idle_timeout (KServe's keep-alive default is 65 s).
  std::chrono::milliseconds read_timeout{60'000};
  std::chrono::milliseconds idle_timeout{65'000};
  // On shutdown, how long in-flight requests may take before the server stops anyway.
  std::chrono::milliseconds drain_timeout{30'000};
};

class HttpServer {
 public:
  // Binds and listens; serving starts with Run.
  static StatusOr<std::unique_ptr<HttpServer>> Create(const ServerOptions& options,
                                                      Handler handler);
  ~HttpServer();

  uint16_t port() const;
  // Runs the I/O threads (the caller's thread is one of them) until shutdown has drained.
  void Run();
  // Stops accepting, lets in-flight requests finish (answered with Connection: close), closes
  // idle connections, and makes Run return. Safe from any thread, idempotent.
  void Shutdown();
  // Requests being handled right now (read, not yet answered).
  int64_t in_flight() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace quiver::http
