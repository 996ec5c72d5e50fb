// TestHttpServer: a tiny real HTTP/1.1 server on 127.0.0.1:<ephemeral> for the storage tests
// (Boost.Beast, synchronous, one thread per connection). The handler sees every request and its
// headers; the server records them so tests can assert what reached it.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace quiver::storage::testing {

struct SeenRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
};

struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

class TestHttpServer {
 public:
  using Handler = std::function<Reply(const SeenRequest&)>;

  explicit TestHttpServer(Handler handler) : handler_(std::move(handler)) {
    namespace asio = boost::asio;
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~TestHttpServer() {
    stopping_ = true;
    boost::system::error_code ec;
    // Wake the blocking accept with one connection of our own.
    boost::asio::ip::tcp::socket wake(io_);
    wake.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
    accept_thread_.join();
    for (std::thread& t : connections_) t.join();
  }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  std::vector<SeenRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  int Count(const std::string& method) const {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const SeenRequest& r : seen_) n += r.method == method ? 1 : 0;
    return n;
  }

 private:
  void AcceptLoop() {
    while (true) {
      boost::asio::ip::tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (stopping_) return;
      if (ec) continue;
      connections_.emplace_back([this, s = std::move(socket)]() mutable { Serve(std::move(s)); });
    }
  }

  void Serve(boost::asio::ip::tcp::socket socket) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buffer;
    while (true) {
      http::request<http::string_body> request;
      boost::system::error_code ec;
      http::read(socket, buffer, request, ec);
      if (ec) return;
      SeenRequest seen;
      seen.method = std::string(request.method_string());
      seen.target = std::string(request.target());
      for (const auto& field : request) {
        std::string name(field.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        seen.headers[name] = std::string(field.value());
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back(seen);
      }
      Reply reply = handler_(seen);
      http::response<http::string_body> response{static_cast<http::status>(reply.status),
                                                 request.version()};
      for (const auto& [name, value] : reply.headers) response.set(name, value);
      response.body() = std::move(reply.body);
      response.prepare_payload();
      // HEAD: the headers of the GET, without the body.
      if (request.method() == http::verb::head) {
        http::response<http::empty_body> head{response.result(), response.version()};
        for (const auto& field : response) head.set(field.name_string(), field.value());
        head.keep_alive(request.keep_alive());
        http::write(socket, head, ec);
      } else {
        response.keep_alive(request.keep_alive());
        http::write(socket, response, ec);
      }
      if (ec || !request.keep_alive()) return;
    }
  }

  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::vector<std::thread> connections_;  // touched by the accept thread only, joined at the end
  mutable std::mutex mu_;
  std::vector<SeenRequest> seen_;
};

}  // namespace quiver::storage::testing
