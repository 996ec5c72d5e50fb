// ApiServer: the control plane's REST API (api_handler.h) on an http::HttpServer. Requests are
// answered on the I/O thread that read them: every call is a short SQLite transaction.
// Thread-safety: as HttpServer (Run on one thread, Shutdown from any).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "api/api_handler.h"
#include "common/status.h"
#include "http/server.h"
#include "store/store.h"

namespace quiver::api {

struct ApiServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7070;  // 0 picks a free port
  int io_threads = 2;
  ApiHandlerOptions handler;  // token, change callback
};

// True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost): the API needs
// no token there.
bool IsLoopbackAddress(std::string_view host);

class ApiServer {
 public:
  // Binds and listens. `store` is borrowed and must outlive the server.
  static StatusOr<std::unique_ptr<ApiServer>> Create(store::Store* store, ApiServerOptions options);

  uint16_t port() const { return http_->port(); }
  // Serves until Shutdown; the calling thread is one of the I/O threads.
  void Run() { http_->Run(); }
  void Shutdown() { http_->Shutdown(); }

 private:
  ApiServer(std::unique_ptr<ApiHandler> handler) : handler_(std::move(handler)) {}

  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<http::HttpServer> http_;
};

}  // namespace quiver::api
