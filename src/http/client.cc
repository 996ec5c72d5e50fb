#include "http/client.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <charconv>
#include <deque>
#include <unordered_map>
#include <vector>

namespace quiver::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

Backend Backend::Make(std::string host, uint16_t port) {
  Backend b;
  b.key =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  b.host = std::move(host);
  b.port = port;
  return b;
}

StatusOr<Backend> Backend::Parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return InvalidArgument("endpoint '" + std::string(text) +
                             "': expected [ipv6]:port, e.g. [::1]:8080");
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return InvalidArgument("endpoint '" + std::string(text) +
                             "': expected host:port, e.g. 127.0.0.1:8080");
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535) {
    return InvalidArgument("endpoint '" + std::string(text) +
                           "': expected host:port with a port in 1..65535");
  }
  return Make(std::string(host), static_cast<uint16_t>(port));
}

namespace {

bool IsIdempotent(bhttp::verb v) {
  return v == bhttp::verb::get || v == bhttp::verb::head || v == bhttp::verb::put ||
         v == bhttp::verb::delete_ || v == bhttp::verb::options || v == bhttp::verb::trace;
}

// Errors that mean "the connection is gone", as opposed to a malformed answer.
bool IsConnectionError(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
         ec == bhttp::error::partial_message || ec == asio::error::connection_reset ||
         ec == asio::error::connection_refused || ec == asio::error::connection_aborted ||
         ec == asio::error::broken_pipe || ec == asio::error::operation_aborted ||
         ec == asio::error::host_unreachable || ec == asio::error::network_unreachable ||
         ec == asio::error::not_connected || ec == asio::error::bad_descriptor ||
         ec == asio::error::host_not_found || ec == asio::error::host_not_found_try_again ||
         ec == asio::error::timed_out;
}

struct Pending {
  Message request;
  Clock::time_point deadline;
  ClientCallback done;
  bool retried = false;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace

class ClientConnection;

struct Pool {
  Backend backend;
  std::vector<std::shared_ptr<ClientConnection>> open;  // busy or idle; owning
  std::vector<ClientConnection*> idle;                  // most recently used last
  std::deque<Pending> waiting;                          // for a connection, FIFO
};

struct HttpClient::Impl : std::enable_shared_from_this<HttpClient::Impl> {
  Impl(asio::io_context& io_context, ClientOptions opts)
      : io(io_context), options(std::move(opts)), sweep_timer(io_context) {}

  void Send(const Backend& backend, Message request, std::chrono::milliseconds timeout,
            ClientCallback done);
  void Dispatch(Pool& pool, Pending pending);
  void OnIdle(ClientConnection* conn);
  void Remove(ClientConnection* conn);
  void StartWaiting(Pool& pool);
  void ScheduleSweep();
  void Sweep();
  void Close();
  Pool& GetPool(const Backend& backend);
  const Pool* FindPool(const Backend& backend) const {
    auto it = pools.find(std::string_view(backend.key));
    return it == pools.end() ? nullptr : it->second.get();
  }

  asio::io_context& io;
  ClientOptions options;
  asio::steady_timer sweep_timer;
  bool closed = false;
  // Pools are never erased before the client is destroyed: connections keep a Pool*.
  std::unordered_map<std::string, std::unique_ptr<Pool>, StringHash, std::equal_to<>> pools;
};

class ClientConnection : public std::enable_shared_from_this<ClientConnection> {
 public:
  ClientConnection(std::shared_ptr<HttpClient::Impl> impl, Pool* pool, size_t slot)
      : impl_(std::move(impl)), pool_(pool), socket_(impl_->io), slot_(slot) {
    // Beast reads at most the buffer's free space per call; room made once serves every read.
    buffer_.reserve(16 * 1024);
  }

  size_t slot() const { return slot_; }
  void set_slot(size_t s) { slot_ = s; }
  bool busy() const { return state_ == State::kConnecting || state_ == State::kBusy; }
  Clock::time_point idle_since() const { return idle_since_; }

  void Connect(Pending pending) {
    cur_ = std::move(pending);
    state_ = State::kConnecting;
    timed_out_ = false;
    auto connect_deadline = Clock::now() + impl_->options.connect_timeout;
    connect_timeout_applies_ = connect_deadline < cur_.deadline;
    deadline_ = std::min(connect_deadline, cur_.deadline);
    beast::error_code ec;
    auto address = asio::ip::make_address(pool_->backend.host, ec);
    if (!ec) {
      socket_.async_connect(
          tcp::endpoint(address, pool_->backend.port),
          [self = shared_from_this()](beast::error_code e) { self->OnConnect(e); });
      return;
    }
    resolver_.emplace(impl_->io);
    resolver_->async_resolve(
        pool_->backend.host, std::to_string(pool_->backend.port),
        [self = shared_from_this()](beast::error_code e, tcp::resolver::results_type results) {
          if (e) return self->Fail(e, false);
          asio::async_connect(
              self->socket_, results,
              [self](beast::error_code e2, const tcp::endpoint&) { self->OnConnect(e2); });
        });
  }

  // Starts the current request on this connected socket.
  void Begin(Pending pending, bool reused) {
    cur_ = std::move(pending);
    reused_ = reused;
    Begin();
  }

  // True when the backend closed this idle connection (or sent bytes nobody asked for, which
  // makes it unusable too). One non-blocking peek; the request has not been written yet.
  bool PeerClosed() {
    char c;
    ssize_t n = ::recv(socket_.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n >= 0) return true;
    return !(errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void MarkIdle() {
    state_ = State::kIdle;
    idle_since_ = Clock::now();
  }

  // The sweep: enforce this connection's one deadline.
  void OnSweep(Clock::time_point now) {
    if (!busy() || now < deadline_ || timed_out_) return;
    timed_out_ = true;
    beast::error_code ec;
    if (resolver_) resolver_->cancel();
    socket_.cancel(ec);
  }

  void CloseSocket() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    beast::error_code ec;
    if (resolver_) resolver_->cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  Pool* pool() const { return pool_; }

 private:
  enum class State { kConnecting, kBusy, kIdle, kClosed };

  void OnConnect(beast::error_code ec) {
    if (ec) return Fail(ec, false);
    beast::error_code opt_ec;
    socket_.set_option(tcp::no_delay(true), opt_ec);
    reused_ = false;
    Begin();
  }

  void Begin() {
    state_ = State::kBusy;
    timed_out_ = false;
    connect_timeout_applies_ = false;
    deadline_ = cur_.deadline;
    auto& req = cur_.request;
    if (req.find(bhttp::field::host) == req.end()) req.set(bhttp::field::host, pool_->backend.key);
    req.version(11);
    req.keep_alive(true);
    req.prepare_payload();
    parser_.emplace();
    parser_->body_limit(impl_->options.max_response_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(impl_->options.max_response_header_bytes));
    if (req.method() == bhttp::verb::head) parser_->skip(true);
    bhttp::async_write(socket_, req, [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->Fail(ec, n > 0);
      bhttp::async_read_header(self->socket_, self->buffer_, *self->parser_,
                               [self](beast::error_code e, size_t) { self->OnHeader(e); });
    });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return Fail(ec, true);
    // Beast 1.74 loses the body_limit error when the header and the body arrive in one read
    // (the eager parse continues and overwrites it), so the declared length is checked here.
    if (auto length = parser_->content_length();
        length && *length > impl_->options.max_response_body_bytes) {
      return Fail(bhttp::error::body_limit, true);
    }
    if (parser_->is_done()) return OnResponse();
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code e, size_t) {
                        if (e) return self->Fail(e, true);
                        self->OnResponse();
                      });
  }

  void OnResponse() {
    ClientResult result;
    result.request_written = true;
    result.response = parser_->release();
    parser_.reset();
    // Bytes after the answer would belong to no request: such a connection is not reused.
    bool reusable = result.response.keep_alive() && buffer_.size() == 0 && !impl_->closed;
    ClientCallback done = std::move(cur_.done);
    cur_ = Pending{};
    if (reusable) {
      impl_->OnIdle(this);
    } else {
      Drop();
    }
    done(std::move(result));
  }

  void Fail(beast::error_code ec, bool written) {
    if (state_ == State::kClosed && !busy() && !cur_.done) return;
    bool answered_some = parser_ && parser_->got_some();
    Status status;
    const std::string& key = pool_->backend.key;
    if (timed_out_) {
      if (state_ == State::kConnecting && connect_timeout_applies_) {
        status = DeadlineExceeded("backend " + key + ": connect timed out after " +
                                  std::to_string(impl_->options.connect_timeout.count()) + " ms");
      } else {
        status = DeadlineExceeded("backend " + key + " did not answer within the request timeout");
      }
    } else if (ec == bhttp::error::body_limit) {
      status = ResourceExhausted("backend " + key + ": response body exceeds the limit of " +
                                 std::to_string(impl_->options.max_response_body_bytes) + " bytes");
    } else if (ec == bhttp::error::header_limit) {
      status =
          ResourceExhausted("backend " + key + ": response headers exceed the limit of " +
                            std::to_string(impl_->options.max_response_header_bytes) + " bytes");
    } else if (IsConnectionError(ec)) {
      const char* what = state_ == State::kConnecting ? "connect failed: " : "";
      status = Unavailable("backend " + key + ": " + what + ec.message());
    } else {
      status = Internal("backend " + key + ": malformed response: " + ec.message());
    }
    Pending pending = std::move(cur_);
    cur_ = Pending{};
    bool was_reused = reused_;
    Drop();
    // A reused connection the backend closed under us: nothing of an answer arrived, so a
    // request it cannot have seen, or one safe to repeat, goes once more on a fresh connection.
    if (!timed_out_ && was_reused && !answered_some && !pending.retried && IsConnectionError(ec) &&
        !impl_->closed && (!written || IsIdempotent(pending.request.method()))) {
      pending.retried = true;
      impl_->Dispatch(*pool_, std::move(pending));
      return;
    }
    ClientResult result;
    result.status = std::move(status);
    result.request_written = written;
    if (!written) result.unsent = std::move(pending.request);
    if (pending.done) pending.done(std::move(result));
  }

  // Closes the socket and leaves the pool; a request waiting for a connection may take the slot.
  void Drop() {
    auto self = shared_from_this();  // Remove may release the pool's reference
    CloseSocket();
    impl_->Remove(this);
    if (!impl_->closed) impl_->StartWaiting(*pool_);
  }

  std::shared_ptr<HttpClient::Impl> impl_;
  Pool* pool_;
  tcp::socket socket_;
  std::optional<tcp::resolver> resolver_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  Pending cur_;
  State state_ = State::kConnecting;
  Clock::time_point deadline_;
  Clock::time_point idle_since_;
  size_t slot_;
  bool reused_ = false;
  bool timed_out_ = false;
  bool connect_timeout_applies_ = false;
};

Pool& HttpClient::Impl::GetPool(const Backend& backend) {
  auto it = pools.find(std::string_view(backend.key));
  if (it != pools.end()) return *it->second;
  auto pool = std::make_unique<Pool>();
  pool->backend = backend;
  if (pool->backend.key.empty()) pool->backend = Backend::Make(backend.host, backend.port);
  Pool& ref = *pool;
  pools.emplace(pool->backend.key, std::move(pool));
  return ref;
}

void HttpClient::Impl::Send(const Backend& backend, Message request,
                            std::chrono::milliseconds timeout, ClientCallback done) {
  if (closed) {
    asio::post(io, [done = std::move(done), req = std::move(request)]() mutable {
      ClientResult r;
      r.status = Unavailable("HTTP client is closed");
      r.unsent = std::move(req);
      done(std::move(r));
    });
    return;
  }
  Pool& pool = GetPool(backend);
  Dispatch(pool, Pending{std::move(request), Clock::now() + timeout, std::move(done), false});
}

void HttpClient::Impl::Dispatch(Pool& pool, Pending pending) {
  while (!pool.idle.empty()) {
    ClientConnection* conn = pool.idle.back();
    pool.idle.pop_back();
    if (conn->PeerClosed()) {
      conn->CloseSocket();
      Remove(conn);
      continue;
    }
    conn->Begin(std::move(pending), true);
    return;
  }
  if (options.max_connections_per_backend == 0 ||
      pool.open.size() < options.max_connections_per_backend) {
    auto conn = std::make_shared<ClientConnection>(shared_from_this(), &pool, pool.open.size());
    pool.open.push_back(conn);
    conn->Connect(std::move(pending));
    return;
  }
  pool.waiting.push_back(std::move(pending));
}

void HttpClient::Impl::OnIdle(ClientConnection* conn) {
  Pool& pool = *conn->pool();
  if (!pool.waiting.empty()) {
    Pending next = std::move(pool.waiting.front());
    pool.waiting.pop_front();
    conn->Begin(std::move(next), true);
    return;
  }
  if (pool.idle.size() >= options.max_idle_per_backend) {
    auto keep = pool.open[conn->slot()];
    conn->CloseSocket();
    Remove(conn);
    return;
  }
  conn->MarkIdle();
  pool.idle.push_back(conn);
}

void HttpClient::Impl::Remove(ClientConnection* conn) {
  Pool& pool = *conn->pool();
  auto idle_it = std::find(pool.idle.begin(), pool.idle.end(), conn);
  if (idle_it != pool.idle.end()) pool.idle.erase(idle_it);
  size_t slot = conn->slot();
  if (slot < pool.open.size() && pool.open[slot].get() == conn) {
    std::swap(pool.open[slot], pool.open.back());
    pool.open[slot]->set_slot(slot);
    pool.open.pop_back();
  }
}

void HttpClient::Impl::StartWaiting(Pool& pool) {
  if (pool.waiting.empty()) return;
  Pending next = std::move(pool.waiting.front());
  pool.waiting.pop_front();
  Dispatch(pool, std::move(next));
}

void HttpClient::Impl::ScheduleSweep() {
  sweep_timer.expires_after(options.sweep_interval);
  sweep_timer.async_wait([weak = weak_from_this()](beast::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock(); self && !self->closed) {
      self->Sweep();
      self->ScheduleSweep();
    }
  });
}

void HttpClient::Impl::Sweep() {
  auto now = Clock::now();
  std::vector<Pending> expired;
  for (auto& [key, pool] : pools) {
    for (size_t i = 0; i < pool->open.size();) {
      ClientConnection* c = pool->open[i].get();
      if (!c->busy() && now - c->idle_since() >= options.idle_timeout) {
        c->CloseSocket();
        Remove(c);  // swaps another connection into slot i
        continue;
      }
      c->OnSweep(now);
      ++i;
    }
    for (auto it = pool->waiting.begin(); it != pool->waiting.end();) {
      if (now >= it->deadline) {
        expired.push_back(std::move(*it));
        it = pool->waiting.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Callbacks last: they may Send, which may add pools.
  for (auto& p : expired) {
    ClientResult r;
    r.status = DeadlineExceeded(
        "no connection to the backend became free within the request "
        "timeout (" +
        std::to_string(options.max_connections_per_backend) + " connections per backend)");
    r.unsent = std::move(p.request);
    p.done(std::move(r));
  }
}

void HttpClient::Impl::Close() {
  if (closed) return;
  closed = true;
  sweep_timer.cancel();
  std::vector<Pending> failed;
  for (auto& [key, pool] : pools) {
    for (auto& p : pool->waiting) failed.push_back(std::move(p));
    pool->waiting.clear();
    pool->idle.clear();
    // Busy connections' operations end with an error, which their callbacks report.
    for (auto& c : pool->open) c->CloseSocket();
    pool->open.clear();
  }
  for (auto& p : failed) {
    asio::post(io, [p = std::make_shared<Pending>(std::move(p))]() mutable {
      ClientResult r;
      r.status = Unavailable("HTTP client is closed");
      r.unsent = std::move(p->request);
      p->done(std::move(r));
    });
  }
}

HttpClient::HttpClient(asio::io_context& io, ClientOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {
  if (impl_->options.sweep_interval.count() <= 0) {
    impl_->options.sweep_interval = std::chrono::milliseconds(20);
  }
  impl_->ScheduleSweep();
}

HttpClient::~HttpClient() { impl_->Close(); }

void HttpClient::Send(const Backend& backend, Message request, std::chrono::milliseconds timeout,
                      ClientCallback done) {
  impl_->Send(backend, std::move(request), timeout, std::move(done));
}

void HttpClient::Close() { impl_->Close(); }

size_t HttpClient::open_connections(const Backend& backend) const {
  const Pool* p = impl_->FindPool(backend);
  return p ? p->open.size() : 0;
}

size_t HttpClient::idle_connections(const Backend& backend) const {
  const Pool* p = impl_->FindPool(backend);
  return p ? p->idle.size() : 0;
}

}  // namespace quiver::http
