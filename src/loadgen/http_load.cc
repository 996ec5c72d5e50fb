#include "loadgen/http_load.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <deque>
#include <optional>
#include <random>
#include <thread>

namespace quiver::loadgen {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr auto kSweepInterval = std::chrono::milliseconds(250);
constexpr auto kReconnectDelay = std::chrono::milliseconds(100);
constexpr auto kDelayedAfter = std::chrono::milliseconds(1);
constexpr uint64_t kMaxResponseBytes = 1ull << 30;

// Error responses keep this much of their body for the report.
constexpr size_t kMaxErrorBody = 1024;
// Bytes read per read call (a response larger than this takes several).
constexpr size_t kReadSize = 16 * 1024;

// Beast's HTTP/1.1 response parser without a message: it checks the status line and the header
// (and tracks keep-alive, Content-Length and chunking) but stores no field, so parsing a response
// allocates nothing. Keeps the status, and the body of an error response for the report.
class ResponseParser final : public http::basic_parser<false> {
 public:
  explicit ResponseParser(std::string* error_body) : error_body_(error_body) {
    error_body_->clear();
  }
  int status() const { return status_; }

 private:
  void on_request_impl(http::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override {
    status_ = code;
  }
  void on_field_impl(http::field, beast::string_view, beast::string_view,
                     beast::error_code&) override {}
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, beast::error_code&) override {}
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    Keep(body);
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                 beast::error_code&) override {
    Keep(body);
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  void Keep(beast::string_view s) {
    if (status_ >= 200 && status_ < 300) return;
    size_t n = std::min(s.size(), kMaxErrorBody - std::min(kMaxErrorBody, error_body_->size()));
    error_body_->append(s.data(), n);
  }

  std::string* error_body_;
  int status_ = 0;
};

class Worker;

// One keep-alive connection: at most one request in flight. Lives on its worker's thread.
class Connection {
 public:
  explicit Connection(Worker* worker);
  // Sends the next request; its latency counts from `origin`. Connects first when needed.
  void Send(Clock::time_point origin);
  // Aborts whatever is in flight (its handlers then see operation_aborted).
  void Close();
  // Called by the sweep: closes the connection when its request is older than `deadline`.
  void CheckTimeout(Clock::time_point now, std::chrono::milliseconds timeout);
  void RetryLater(Clock::time_point origin);

 private:
  void Connect();
  void Write();
  void WaitForResponse();
  void ReadAndParse();
  void OnResponse();
  void Fail(const char* step, beast::error_code ec);

  Worker* worker_;
  tcp::socket socket_;
  asio::steady_timer retry_;
  beast::flat_buffer buffer_;  // reused: keeps its capacity
  std::string error_body_;     // reused
  std::optional<ResponseParser> parser_;
  const std::string* request_ = nullptr;
  Clock::time_point origin_;
  Clock::time_point started_;
  bool connected_ = false;
  bool busy_ = false;
  bool timed_out_ = false;
};

// A sender thread: its event loop, its connections and its share of the load.
class Worker {
 public:
  Worker(const HttpLoadOptions& options, tcp::resolver::results_type endpoints,
         size_t first_request)
      : options_(options),
        endpoints_(std::move(endpoints)),
        next_request_(first_request),
        work_(asio::make_work_guard(ctx_)) {}

  void StartClosedLoop(int64_t streams) {
    for (int64_t i = 0; i < streams; ++i) {
      conns_.push_back(std::make_unique<Connection>(this));
    }
    asio::post(ctx_, [this] {
      Clock::time_point now = Clock::now();
      for (auto& c : conns_) c->Send(now);
      ArmSweep();
    });
    thread_ = std::thread([this] { ctx_.run(); });
  }

  void StartOpenLoop(double rate, Distribution distribution, uint64_t seed,
                     std::chrono::nanoseconds phase, size_t max_connections) {
    open_loop_ = true;
    max_connections_ = std::max<size_t>(max_connections, 1);
    rng_.seed(seed);
    schedule_.emplace(
        distribution, rate, [this] { return std::uniform_real_distribution<double>(0, 1)(rng_); },
        phase);
    asio::post(ctx_, [this] {
      start_ = Clock::now();
      next_due_ = start_ + schedule_->Next();
      ArmSweep();
      Tick();
    });
    thread_ = std::thread([this] { ctx_.run(); });
  }

  // Asks the thread to close everything; Join waits for it.
  void Stop() {
    asio::post(ctx_, [this] {
      stopping_ = true;
      tick_.cancel();
      sweep_.cancel();
      for (auto& c : conns_) c->Close();
    });
    work_.reset();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

  asio::io_context& ctx() { return ctx_; }
  const tcp::resolver::results_type& endpoints() const { return endpoints_; }
  SampleRecorder& recorder() { return recorder_; }
  const SampleRecorder& recorder() const { return recorder_; }
  bool stopping() const { return stopping_; }
  std::chrono::milliseconds timeout() const { return options_.engine.request_timeout; }

  const std::string* NextRequest() {
    const auto& all = *options_.requests;
    const std::string* r = &all[next_request_];
    if (++next_request_ == all.size()) next_request_ = 0;
    return r;
  }

  // A connection finished its request (`connect_failed`: it could not even connect).
  void OnDone(Connection* c, bool connect_failed) {
    if (stopping_) return;
    if (!open_loop_) {
      if (connect_failed) {
        c->RetryLater(Clock::now());  // do not spin on a server that refuses connections
      } else {
        c->Send(Clock::now());
      }
      return;
    }
    if (!pending_.empty()) {
      Clock::time_point due = pending_.front();
      pending_.pop_front();
      SendAt(c, due, true);
    } else {
      idle_.push_back(c);
    }
  }

 private:
  // Sends a request scheduled at `due`. Its latency counts from the moment it is sent, except
  // for a request that waited for a free connection (`waited`): that wait is the server's doing
  // (every connection busy with it), so its latency counts from the schedule. Lateness of the
  // sender's own timer is not charged to the server; `delayed` counts it.
  void SendAt(Connection* c, Clock::time_point due, bool waited) {
    Clock::time_point now = Clock::now();
    if (now - due > kDelayedAfter) recorder_.RecordDelayed();
    c->Send(waited ? due : now);
  }

  // Open loop: sends every request that is due, then sleeps until the next one.
  void Tick() {
    if (stopping_) return;
    Clock::time_point now = Clock::now();
    while (next_due_ <= now) {
      Dispatch(next_due_);
      next_due_ = start_ + schedule_->Next();
    }
    tick_.expires_at(next_due_);
    tick_.async_wait([this](beast::error_code ec) {
      if (!ec) Tick();
    });
  }

  void Dispatch(Clock::time_point origin) {
    if (!idle_.empty()) {
      Connection* c = idle_.back();
      idle_.pop_back();
      SendAt(c, origin, false);
    } else if (conns_.size() < max_connections_) {
      conns_.push_back(std::make_unique<Connection>(this));
      SendAt(conns_.back().get(), origin, false);
    } else {
      pending_.push_back(origin);
    }
  }

  void ArmSweep() {
    sweep_.expires_after(kSweepInterval);
    sweep_.async_wait([this](beast::error_code ec) {
      if (ec || stopping_) return;
      Clock::time_point now = Clock::now();
      for (auto& c : conns_) c->CheckTimeout(now, timeout());
      ArmSweep();
    });
  }

  const HttpLoadOptions& options_;
  tcp::resolver::results_type endpoints_;
  size_t next_request_;
  // The I/O context is declared first so that it is destroyed last, after the sockets and
  // timers that use it.
  asio::io_context ctx_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  asio::steady_timer tick_{ctx_};
  asio::steady_timer sweep_{ctx_};
  SampleRecorder recorder_;
  std::vector<std::unique_ptr<Connection>> conns_;
  // Open loop.
  bool open_loop_ = false;
  size_t max_connections_ = 0;
  std::vector<Connection*> idle_;
  std::deque<Clock::time_point> pending_;  // requests due while every connection was busy
  std::mt19937_64 rng_;
  std::optional<RequestSchedule> schedule_;
  Clock::time_point start_;
  Clock::time_point next_due_;
  bool stopping_ = false;
  std::thread thread_;
};

Connection::Connection(Worker* worker)
    : worker_(worker), socket_(worker->ctx()), retry_(worker->ctx()) {}

void Connection::Send(Clock::time_point origin) {
  origin_ = origin;
  started_ = Clock::now();
  busy_ = true;
  timed_out_ = false;
  request_ = worker_->NextRequest();
  if (connected_) {
    Write();
  } else {
    Connect();
  }
}

void Connection::RetryLater(Clock::time_point origin) {
  retry_.expires_after(kReconnectDelay);
  retry_.async_wait([this, origin](beast::error_code ec) {
    if (!ec && !worker_->stopping()) Send(origin);
  });
}

void Connection::Connect() {
  asio::async_connect(socket_, worker_->endpoints(),
                      [this](beast::error_code ec, const tcp::endpoint&) {
                        if (ec) return Fail("connect", ec);
                        socket_.set_option(tcp::no_delay(true), ec);
                        // Reads and writes below are tried directly, and wait only when the
                        // socket is not ready.
                        socket_.non_blocking(true, ec);
                        connected_ = true;
                        Write();
                      });
}

// A request fits the socket buffer: one send, right here, with no handler to run; only when it
// does not is the rest written asynchronously.
void Connection::Write() {
  beast::error_code ec;
  size_t sent = socket_.write_some(asio::buffer(*request_), ec);
  if (ec && ec != asio::error::would_block) return Fail("write", ec);
  if (sent == request_->size()) return WaitForResponse();
  asio::async_write(socket_, asio::buffer(*request_) + sent, [this](beast::error_code e, size_t) {
    if (e) return Fail("write", e);
    WaitForResponse();
  });
}

// Waits until the socket is readable, then reads: one read call per response, where an
// asynchronous read would first try (and fail) to read before the answer has arrived.
void Connection::WaitForResponse() {
  parser_.emplace(&error_body_);
  parser_->body_limit(kMaxResponseBytes);
  parser_->eager(true);
  socket_.async_wait(tcp::socket::wait_read, [this](beast::error_code ec) {
    if (ec) return Fail("read", ec);
    ReadAndParse();
  });
}

void Connection::ReadAndParse() {
  beast::error_code ec;
  size_t n = socket_.read_some(buffer_.prepare(kReadSize), ec);
  if (ec == asio::error::would_block) {
    socket_.async_wait(tcp::socket::wait_read, [this](beast::error_code e) {
      if (e) return Fail("read", e);
      ReadAndParse();
    });
    return;
  }
  if (ec == asio::error::eof && parser_->got_some() && parser_->need_eof()) {
    parser_->put_eof(ec);  // a body delimited by the end of the connection
    if (ec) return Fail("read", ec);
    return OnResponse();
  }
  if (ec) return Fail("read", ec);
  buffer_.commit(n);
  while (buffer_.size() > 0 && !parser_->is_done()) {
    size_t used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec) return Fail("read", ec);
    if (used == 0) break;
  }
  if (parser_->is_done()) return OnResponse();
  socket_.async_wait(tcp::socket::wait_read, [this](beast::error_code e) {
    if (e) return Fail("read", e);
    ReadAndParse();
  });
}

void Connection::OnResponse() {
  busy_ = false;
  const int status = parser_->status();
  if (!worker_->stopping()) {
    if (status >= 200 && status < 300) {
      worker_->recorder().RecordSuccess((Clock::now() - origin_).count());
    } else {
      worker_->recorder().RecordError("HTTP " + std::to_string(status), error_body_);
    }
  }
  if (!parser_->keep_alive()) {
    beast::error_code ignored;
    socket_.close(ignored);
    connected_ = false;
    buffer_.clear();
  }
  worker_->OnDone(this, false);
}

void Connection::Fail(const char* step, beast::error_code ec) {
  const bool aborted_by_stop = worker_->stopping() && !timed_out_;
  busy_ = false;
  beast::error_code ignored;
  socket_.close(ignored);
  connected_ = false;
  buffer_.clear();
  if (aborted_by_stop) return;
  if (timed_out_) {
    worker_->recorder().RecordError(
        "timeout", "no answer within " + std::to_string(worker_->timeout().count()) + " ms");
  } else {
    worker_->recorder().RecordError(std::string(step) + ": " + ec.message(), "");
  }
  worker_->OnDone(this, std::string_view(step) == "connect");
}

void Connection::Close() {
  beast::error_code ignored;
  retry_.cancel();
  socket_.close(ignored);
}

void Connection::CheckTimeout(Clock::time_point now, std::chrono::milliseconds timeout) {
  if (busy_ && now - started_ > timeout) {
    timed_out_ = true;
    beast::error_code ignored;
    socket_.close(ignored);  // the pending operation completes with operation_aborted
  }
}

class HttpLoadEngine : public LoadEngine {
 public:
  explicit HttpLoadEngine(HttpLoadOptions options) : options_(std::move(options)) {}
  ~HttpLoadEngine() override { Stop(); }

  Status Start(const LoadLevel& level) override {
    if (!options_.requests || options_.requests->empty()) {
      return InvalidArgument("no request to send");
    }
    asio::io_context resolver_ctx;
    tcp::resolver resolver(resolver_ctx);
    beast::error_code ec;
    auto endpoints = resolver.resolve(options_.endpoint.host, options_.endpoint.port, ec);
    if (ec) return Unavailable("cannot resolve " + options_.endpoint.host + ": " + ec.message());
    const int threads = std::max(1, options_.engine.threads);
    const size_t n_requests = options_.requests->size();
    if (level.mode == LoadLevel::Mode::kConcurrency) {
      // Streams are spread evenly; a thread without a stream is not started.
      for (int i = 0; i < threads; ++i) {
        int64_t streams = level.concurrency / threads + (i < level.concurrency % threads ? 1 : 0);
        if (streams == 0) continue;
        workers_.push_back(std::make_unique<Worker>(options_, endpoints, i % n_requests));
        workers_.back()->StartClosedLoop(streams);
      }
    } else {
      // Each thread sends rate/threads: independent Poisson processes add up to one; constant
      // senders interleave by starting at staggered phases.
      const double share = level.rate / threads;
      const double interval_ns = 1e9 / share;
      const int per_thread_max = std::max(1, options_.engine.max_in_flight / threads);
      for (int i = 0; i < threads; ++i) {
        workers_.push_back(std::make_unique<Worker>(options_, endpoints, i % n_requests));
        auto phase = std::chrono::nanoseconds(static_cast<int64_t>(interval_ns * i / threads));
        workers_.back()->StartOpenLoop(share, level.distribution, options_.engine.seed + i, phase,
                                       per_thread_max);
      }
    }
    return Status::Ok();
  }

  WindowSamples Take() override {
    WindowSamples all;
    for (auto& w : workers_) all.Merge(w->recorder().Take());
    return all;
  }

  void Peek(uint64_t* completed, uint64_t* errors) const override {
    *completed = 0;
    *errors = 0;
    for (const auto& w : workers_) {
      uint64_t c, e;
      w->recorder().Peek(&c, &e);
      *completed += c;
      *errors += e;
    }
  }

  void Stop() override {
    for (auto& w : workers_) w->Stop();
    for (auto& w : workers_) w->Join();
    workers_.clear();
  }

 private:
  HttpLoadOptions options_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace

std::unique_ptr<LoadEngine> CreateHttpLoadEngine(HttpLoadOptions options) {
  return std::make_unique<HttpLoadEngine>(std::move(options));
}

}  // namespace quiver::loadgen
