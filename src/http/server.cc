#include "http/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <list>
#include <optional>
#include <thread>

#include "common/system.h"

namespace quiver::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string ErrorBody(std::string_view message) {
  std::string out = "{\"error\":\"";
  for (char c : message) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) out.push_back(c);
  }
  out += "\"}";
  return out;
}

}  // namespace

std::string_view Request::header(std::string_view name) const {
  auto it = message.find(beast::string_view(name.data(), name.size()));
  if (it == message.end()) return {};
  auto v = it->value();
  return {v.data(), v.size()};
}

// Everything one I/O thread owns. Only that thread touches `connections`.
struct IoThread {
  asio::io_context ctx{1};
  std::list<std::weak_ptr<Connection>> connections;
  std::optional<asio::steady_timer> sweep_timer;
};

struct HttpServer::Impl {
  // Counters first: connections destroyed with the I/O threads below still update them.
  std::atomic<bool> draining{false};
  std::atomic<bool> stopped{false};
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> connections{0};
  ServerOptions options;
  Handler handler;
  std::vector<std::unique_ptr<IoThread>> threads;
  std::optional<tcp::acceptor> acceptor;  // on threads[0]
  std::optional<asio::steady_timer> accept_retry;
  std::optional<asio::steady_timer> drain_timer;
  size_t next_thread = 0;
  Clock::time_point drain_deadline;
  std::chrono::milliseconds sweep_interval{1000};

  void Accept();
  void ScheduleSweep(IoThread* t);
  void BeginDrain();
  void CheckDrained();
  void StopAll();
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpServer::Impl* server, IoThread* io, tcp::socket socket)
      : server_(server), io_(io), socket_(std::move(socket)) {
    server_->connections.fetch_add(1, std::memory_order_relaxed);
  }
  ~Connection() { server_->connections.fetch_sub(1, std::memory_order_relaxed); }

  void Start() { ReadRequest(); }

  // From any thread.
  void Post(Response response) {
    if (io_->ctx.get_executor().running_in_this_thread()) {
      Send(std::move(response));
    } else {
      asio::post(io_->ctx, [self = shared_from_this(), r = std::move(response)]() mutable {
        self->Send(std::move(r));
      });
    }
  }

  // The sweep: enforce the one deadline of this connection. On its I/O thread.
  void OnSweep(Clock::time_point now) {
    if (state_ == State::kReading) {
      if (!first_byte_seen_ && (buffer_.size() > 0 || (parser_ && parser_->got_some()))) {
        first_byte_seen_ = true;
        deadline_ = now + server_->options.read_timeout;
      }
      if (now >= deadline_) {
        timed_out_ = true;
        beast::error_code ec;
        socket_.cancel(ec);
      }
    } else if (state_ == State::kWriting && now >= deadline_) {
      Close();
    }
  }

  // Shutdown: close at once when no request is in progress. On its I/O thread.
  void OnDrain() {
    if (state_ == State::kReading && !first_byte_seen_ && buffer_.size() == 0 &&
        !(parser_ && parser_->got_some())) {
      Close();
    }
  }

 private:
  enum class State { kReading, kHandling, kWriting, kClosed };
  static constexpr std::uint64_t kLargeBody = 4096;
  static constexpr std::size_t kBodyReadChunk = 64 * 1024;

  void ReadRequest() {
    if (server_->draining.load(std::memory_order_relaxed) && buffer_.size() == 0) {
      Close();
      return;
    }
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    state_ = State::kReading;
    first_byte_seen_ = buffer_.size() > 0;
    timed_out_ = false;
    deadline_ = Clock::now() + (first_byte_seen_ ? server_->options.read_timeout
                                                 : server_->options.idle_timeout);
    bhttp::async_read_header(socket_, buffer_, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    if (parser_->is_done()) return OnRequest();
    if (!first_byte_seen_) {
      first_byte_seen_ = true;
      deadline_ = Clock::now() + server_->options.read_timeout;
    }
    // curl sends "Expect: 100-continue" for larger bodies and waits a second without this.
    auto expect = parser_->get()[bhttp::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      beast::error_code wec;
      asio::write(socket_, asio::buffer(kContinue.data(), kContinue.size()), wec);
      if (wec) return Close();
    }
    // Beast reads at most the buffer's free space per call (512 bytes at least), and the parser
    // moves body bytes out of the buffer, so it never grows by itself: without room made here a
    // 256 KB body arrives in 500 reads of 512 bytes.
    if (auto length = parser_->content_length(); length && *length > kLargeBody) {
      buffer_.reserve(buffer_.size() + std::min<std::size_t>(*length, kBodyReadChunk));
    }
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->OnRequest();
                      });
  }

  void OnRequest() {
    state_ = State::kHandling;
    server_->in_flight.fetch_add(1, std::memory_order_relaxed);
    Request request{parser_->release()};
    parser_.reset();
    keep_alive_ = request.message.keep_alive();
    head_ = request.message.method() == bhttp::verb::head;
    server_->handler(std::move(request), Responder(shared_from_this()));
  }

  void OnReadError(beast::error_code ec) {
    if (state_ == State::kClosed) return;
    if (timed_out_) {
      if (first_byte_seen_) {
        return WriteError(408, "request not received within the read timeout of " +
                                   std::to_string(server_->options.read_timeout.count()) + " ms");
      }
      return Close();  // idle keep-alive connection
    }
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
        ec == asio::error::bad_descriptor) {
      return Close();
    }
    if (ec == bhttp::error::body_limit) {
      return WriteError(413, "request body exceeds the limit of " +
                                 std::to_string(server_->options.max_body_bytes) +
                                 " bytes (--max-body-bytes)");
    }
    if (ec == bhttp::error::header_limit) {
      return WriteError(431, "request headers exceed the limit of " +
                                 std::to_string(server_->options.max_header_bytes) +
                                 " bytes (--max-header-bytes)");
    }
    WriteError(400, "malformed HTTP request: " + ec.message());
  }

  void WriteError(int status, const std::string& message) {
    server_->in_flight.fetch_add(1, std::memory_order_relaxed);
    keep_alive_ = false;
    head_ = false;
    Send(Response{.status = status, .body = ErrorBody(message)});
  }

  friend class Responder;
  void Send(Response r) {
    server_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (state_ == State::kClosed) return;
    res_ = {};
    res_.version(11);
    res_.result(static_cast<unsigned>(r.status));
    res_.set(bhttp::field::content_type,
             beast::string_view(r.content_type.data(), r.content_type.size()));
    for (auto& [k, v] : r.headers) res_.set(k, v);
    res_.body() = std::move(r.body);
    bool close = !keep_alive_ || server_->draining.load(std::memory_order_relaxed);
    res_.keep_alive(!close);
    res_.prepare_payload();
    if (head_) res_.body().clear();  // Content-Length stays that of the GET answer
    state_ = State::kWriting;
    deadline_ = Clock::now() + server_->options.read_timeout;
    bhttp::async_write(socket_, res_,
                       [self = shared_from_this(), close](beast::error_code ec, size_t) {
                         if (ec || close) return self->Close();
                         self->ReadRequest();
                       });
  }

  void Close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  HttpServer::Impl* server_;
  IoThread* io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::string_body> res_;
  State state_ = State::kReading;
  Clock::time_point deadline_;
  bool first_byte_seen_ = false;
  bool timed_out_ = false;
  bool keep_alive_ = true;
  bool head_ = false;
};

Responder::~Responder() {
  if (conn_) {
    Send(Response{.status = 500,
                  .body = ErrorBody("internal error: the request was dropped without an answer")});
  }
}

void Responder::Send(Response response) {
  std::shared_ptr<Connection> conn = std::move(conn_);
  if (observer_ != nullptr) {
    observer_->OnResponse(response);
    observer_.reset();
  }
  if (conn) conn->Post(std::move(response));
}

void HttpServer::Impl::Accept() {
  IoThread* t = threads[next_thread++ % threads.size()].get();
  acceptor->async_accept(t->ctx, [this, t](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || draining) return;
      // Out of file descriptors and the like: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      accept_retry->expires_after(std::chrono::milliseconds(50));
      accept_retry->async_wait([this](beast::error_code e) {
        if (!e && !draining) Accept();
      });
      return;
    }
    beast::error_code opt_ec;
    socket.set_option(tcp::no_delay(true), opt_ec);
    asio::post(t->ctx, [this, t, s = std::move(socket)]() mutable {
      auto conn = std::make_shared<Connection>(this, t, std::move(s));
      t->connections.push_back(conn);
      conn->Start();
    });
    Accept();
  });
}

void HttpServer::Impl::ScheduleSweep(IoThread* t) {
  t->sweep_timer->expires_after(sweep_interval);
  t->sweep_timer->async_wait([this, t](beast::error_code ec) {
    if (ec || stopped) return;
    auto now = Clock::now();
    for (auto it = t->connections.begin(); it != t->connections.end();) {
      if (auto c = it->lock()) {
        c->OnSweep(now);
        ++it;
      } else {
        it = t->connections.erase(it);
      }
    }
    ScheduleSweep(t);
  });
}

void HttpServer::Impl::BeginDrain() {
  if (draining.exchange(true)) return;
  beast::error_code ec;
  acceptor->close(ec);
  accept_retry->cancel();
  drain_deadline = Clock::now() + options.drain_timeout;
  for (auto& t : threads) {
    asio::post(t->ctx, [t = t.get()] {
      for (auto& w : t->connections) {
        if (auto c = w.lock()) c->OnDrain();
      }
    });
  }
  CheckDrained();
}

void HttpServer::Impl::CheckDrained() {
  if (connections.load() == 0 || Clock::now() >= drain_deadline) {
    if (connections.load() != 0) {
      spdlog::warn("drain timeout: stopping with {} connection(s) and {} request(s) in flight",
                   connections.load(), in_flight.load());
    }
    StopAll();
    return;
  }
  drain_timer->expires_after(std::chrono::milliseconds(5));
  drain_timer->async_wait([this](beast::error_code ec) {
    if (!ec) CheckDrained();
  });
}

void HttpServer::Impl::StopAll() {
  stopped = true;
  for (auto& t : threads) t->ctx.stop();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() = default;

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Create(const ServerOptions& options,
                                                         Handler handler) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->handler = std::move(handler);
  int n = options.io_threads > 0 ? options.io_threads : AvailableCpus();
  for (int i = 0; i < n; ++i) impl->threads.push_back(std::make_unique<IoThread>());
  auto shortest = std::min(options.read_timeout, options.idle_timeout);
  impl->sweep_interval = std::clamp(shortest / 4, std::chrono::milliseconds(10),
                                    std::chrono::milliseconds(1000));
  auto& ctx0 = impl->threads[0]->ctx;
  beast::error_code ec;
  auto address = asio::ip::make_address(options.host, ec);
  if (ec) {
    return InvalidArgument("--host: '" + options.host + "' is not an IP address: " +
                           ec.message());
  }
  tcp::endpoint endpoint(address, options.port);
  impl->acceptor.emplace(ctx0);
  impl->acceptor->open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor->bind(endpoint, ec);
  if (!ec) impl->acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                       ": " + ec.message());
  }
  impl->accept_retry.emplace(ctx0);
  impl->drain_timer.emplace(ctx0);
  for (auto& t : impl->threads) t->sweep_timer.emplace(t->ctx);
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor->local_endpoint(ec);
  return ec ? 0 : ep.port();
}

int64_t HttpServer::in_flight() const { return impl_->in_flight.load(); }

void HttpServer::Run() {
  Impl* impl = impl_.get();
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& t : impl->threads) {
    guards.push_back(asio::make_work_guard(t->ctx));
    impl->ScheduleSweep(t.get());
  }
  asio::post(impl->threads[0]->ctx, [impl] {
    if (!impl->draining) impl->Accept();
  });
  std::vector<std::thread> workers;
  for (size_t i = 1; i < impl->threads.size(); ++i) {
    workers.emplace_back([t = impl->threads[i].get()] { t->ctx.run(); });
  }
  impl->threads[0]->ctx.run();
  for (auto& w : workers) w.join();
}

void HttpServer::Shutdown() {
  asio::post(impl_->threads[0]->ctx, [impl = impl_.get()] { impl->BeginDrain(); });
}

}  // namespace quiver::http
