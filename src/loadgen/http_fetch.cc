#include "loadgen/http_fetch.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>

namespace quiver::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

StatusOr<HttpEndpoint> ParseHttpUrl(std::string_view url) {
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    return InvalidArgument("-u " + std::string(url) + ": https is not supported; use http://");
  }
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  HttpEndpoint ep;
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    ep.base_path = std::string(rest.substr(slash));
    while (!ep.base_path.empty() && ep.base_path.back() == '/') ep.base_path.pop_back();
  }
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos)
      return InvalidArgument("-u " + std::string(url) + ": unclosed '['");
    ep.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (authority.starts_with(":"))
      ep.port = std::string(authority.substr(1));
    else if (!authority.empty())
      return InvalidArgument("-u " + std::string(url) + ": expected ':' after ']'");
  } else {
    size_t colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) ep.port = std::string(authority.substr(colon + 1));
  }
  if (ep.port.empty()) ep.port = "80";
  if (ep.host.empty()) return InvalidArgument("-u " + std::string(url) + ": no host");
  for (char c : ep.port) {
    if (c < '0' || c > '9')
      return InvalidArgument("-u " + std::string(url) + ": bad port '" + ep.port + "'");
  }
  return ep;
}

StatusOr<HttpReply> HttpGet(const HttpEndpoint& endpoint, std::string_view path,
                            std::chrono::milliseconds timeout) {
  asio::io_context ioc{1};
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto results = resolver.resolve(endpoint.host, endpoint.port, ec);
  if (ec) {
    return Unavailable("cannot resolve " + endpoint.host + ": " + ec.message());
  }
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  http::request<http::empty_body> req(http::verb::get, endpoint.base_path + std::string(path), 11);
  req.set(http::field::host, endpoint.HostHeader());
  req.set(http::field::user_agent, "quiver-bench");
  std::optional<http::response_parser<http::string_body>> parser;
  parser.emplace();
  parser->body_limit(256u << 20);
  std::string failed_step;
  beast::error_code failure;
  auto fail = [&](const char* step, beast::error_code e) {
    failed_step = step;
    failure = e;
  };
  stream.expires_after(timeout);
  stream.async_connect(results, [&](beast::error_code e, const tcp::endpoint&) {
    if (e) return fail("connect", e);
    http::async_write(stream, req, [&](beast::error_code e2, size_t) {
      if (e2) return fail("write", e2);
      http::async_read(stream, buffer, *parser, [&](beast::error_code e3, size_t) {
        if (e3) return fail("read", e3);
      });
    });
  });
  ioc.run();
  if (failure) {
    std::string where = endpoint.ToString() + std::string(path);
    if (failure == beast::error::timeout) {
      return DeadlineExceeded("GET " + where + ": no answer within " +
                              std::to_string(timeout.count()) + " ms");
    }
    return Unavailable("GET " + where + ": " + failed_step + " failed: " + failure.message());
  }
  HttpReply reply;
  reply.status = parser->get().result_int();
  reply.body = std::move(parser->get().body());
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return reply;
}

}  // namespace quiver::loadgen
