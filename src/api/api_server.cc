#include "api/api_server.h"

#include <arpa/inet.h>

#include <utility>

namespace quiver::api {

bool IsLoopbackAddress(std::string_view host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr v4{};
  std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  return false;
}

StatusOr<std::unique_ptr<ApiServer>> ApiServer::Create(store::Store* store,
                                                       ApiServerOptions options) {
  std::unique_ptr<ApiServer> server(
      new ApiServer(std::make_unique<ApiHandler>(store, std::move(options.handler))));
  http::ServerOptions http_options;
  http_options.host = options.host;
  http_options.port = options.port;
  http_options.io_threads = options.io_threads;
  http_options.max_body_bytes = 8u << 20;  // manifests, not tensors
  // Requests are short; a stop should not wait long for a client that keeps a connection.
  http_options.drain_timeout = std::chrono::seconds(5);
  ApiHandler* handler = server->handler_.get();
  auto http = http::HttpServer::Create(
      http_options, [handler](http::Request&& request, http::Responder responder) {
        ApiRequest req;
        req.method = request.method();
        req.target = request.target();
        req.content_type = request.header("Content-Type");
        req.authorization = request.header("Authorization");
        req.body = request.body();
        ApiResponse out = handler->Handle(req);
        http::Response response;
        response.status = out.status;
        response.body = std::move(out.body);
        // Response::content_type is a view: the handler only returns these literals.
        response.content_type = out.content_type.starts_with("text/plain")
                                    ? std::string_view("text/plain; charset=utf-8")
                                    : std::string_view("application/json");
        responder.Send(std::move(response));
      });
  if (!http.ok()) {
    return Status(http.status().code(), "control plane API on " + options.host + ":" +
                                            std::to_string(options.port) + ": " +
                                            http.status().message());
  }
  server->http_ = std::move(*http);
  return server;
}

}  // namespace quiver::api
