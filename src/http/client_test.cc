#include "http/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <thread>

namespace quiver::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Runs an HttpServer (the real one) on a free port in a thread.
class TestServer {
 public:
  explicit TestServer(Handler handler, ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    auto s = HttpServer::Create(options, std::move(handler));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~TestServer() {
    server_->Shutdown();
    thread_.join();
  }
  Backend backend() const { return Backend::Make("127.0.0.1", server_->port()); }

 private:
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

// A client on its own I/O thread; tests call it through SendSync.
class ClientHarness {
 public:
  explicit ClientHarness(ClientOptions options = {})
      : guard_(asio::make_work_guard(io_)), client_(io_, options) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~ClientHarness() {
    std::promise<void> closed;
    asio::post(io_, [&] {
      client_.Close();
      closed.set_value();
    });
    closed.get_future().wait();
    guard_.reset();
    io_.stop();
    thread_.join();
  }

  std::future<ClientResult> SendAsync(const Backend& b, Message m,
                                      std::chrono::milliseconds timeout = 5s) {
    auto promise = std::make_shared<std::promise<ClientResult>>();
    auto future = promise->get_future();
    asio::post(io_, [this, b, m = std::move(m), timeout, promise]() mutable {
      client_.Send(b, std::move(m), timeout,
                   [promise](ClientResult&& r) { promise->set_value(std::move(r)); });
    });
    return future;
  }
  ClientResult SendSync(const Backend& b, Message m, std::chrono::milliseconds timeout = 5s) {
    return SendAsync(b, std::move(m), timeout).get();
  }
  template <typename F>
  auto OnIo(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto fut = task.get_future();
    asio::post(io_, [&task] { task(); });
    return fut.get();
  }

  HttpClient& client() { return client_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  HttpClient client_;
  std::thread thread_;
};

Message Post(std::string target, std::string body) {
  Message m{bhttp::verb::post, target, 11};
  m.set(bhttp::field::content_type, "application/json");
  m.body() = std::move(body);
  return m;
}

Message Get(std::string target) { return Message{bhttp::verb::get, target, 11}; }

TEST(BackendTest, ParsesHostPortAndNamesBadInput) {
  auto b = Backend::Parse("127.0.0.1:8080");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "127.0.0.1");
  EXPECT_EQ(b->port, 8080);
  EXPECT_EQ(b->key, "127.0.0.1:8080");
  auto v6 = Backend::Parse("[::1]:9000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->key, "[::1]:9000");
  auto bad = Backend::Parse("localhost");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'localhost'"), std::string::npos);
  EXPECT_FALSE(Backend::Parse("h:0").ok());
  EXPECT_FALSE(Backend::Parse("h:70000").ok());
  EXPECT_FALSE(Backend::Parse("h:12x").ok());
}

TEST(HttpClientTest, ProxiesRequestAndReusesOneKeepAliveConnection) {
  std::atomic<int> calls{0};
  TestServer server([&](Request&& req, Responder r) {
    ++calls;
    Response res;
    res.body = std::string(req.method()) + " " + std::string(req.target()) + " " + req.body() +
               " host=" + std::string(req.header("host"));
    res.headers.emplace_back("X-Backend", "one");
    r.Send(std::move(res));
  });
  ClientHarness h;
  for (int i = 0; i < 3; ++i) {
    auto r = h.SendSync(server.backend(), Post("/v2/models/m/infer?x=1", "{\"a\":1}"));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.response.result_int(), 200);
    EXPECT_EQ(r.response.body(),
              "POST /v2/models/m/infer?x=1 {\"a\":1} host=" + server.backend().key);
    EXPECT_EQ(r.response["X-Backend"], "one");
  }
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(h.OnIo([&] { return h.client().open_connections(server.backend()); }), 1u);
  EXPECT_EQ(h.OnIo([&] { return h.client().idle_connections(server.backend()); }), 1u);
}

TEST(HttpClientTest, ConcurrentRequestsOpenConnectionsUpToTheLimit) {
  std::mutex mu;
  std::vector<Responder> held;
  std::atomic<int> arrived{0};
  TestServer server([&](Request&&, Responder r) {
    std::lock_guard<std::mutex> lock(mu);
    held.push_back(std::move(r));
    ++arrived;
  });
  ClientOptions options;
  options.max_connections_per_backend = 2;
  ClientHarness h(options);
  std::vector<std::future<ClientResult>> futures;
  for (int i = 0; i < 3; ++i) futures.push_back(h.SendAsync(server.backend(), Get("/x")));
  while (arrived.load() < 2) std::this_thread::yield();
  // The third waits for a connection: only two are open.
  EXPECT_EQ(h.OnIo([&] { return h.client().open_connections(server.backend()); }), 2u);
  EXPECT_EQ(futures[2].wait_for(50ms), std::future_status::timeout);
  {
    std::lock_guard<std::mutex> lock(mu);
    held[0].Send(Response{.body = "a"});
  }
  while (arrived.load() < 3) std::this_thread::yield();
  {
    std::lock_guard<std::mutex> lock(mu);
    held[1].Send(Response{.body = "b"});
    held[2].Send(Response{.body = "c"});
  }
  for (auto& f : futures) {
    auto r = f.get();
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  }
  EXPECT_EQ(h.OnIo([&] { return h.client().open_connections(server.backend()); }), 2u);
}

TEST(HttpClientTest, ConnectionRefusedIsUnavailableAndGivesTheRequestBack) {
  // Bind then close a socket so that the port is (almost certainly) free.
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  uint16_t port = a.local_endpoint().port();
  a.close();
  ClientHarness h;
  auto r = h.SendSync(Backend::Make("127.0.0.1", port), Post("/v2/x", "body"));
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
  EXPECT_FALSE(r.request_written);
  ASSERT_TRUE(r.unsent.has_value());
  EXPECT_EQ(r.unsent->body(), "body");
  EXPECT_EQ(r.unsent->target(), "/v2/x");
}

// A raw backend: answers each request read on a connection with a fixed response, then
// (when close_after_answer) closes that connection. Counts accepted connections.
class RawBackend {
 public:
  RawBackend(bool close_after_answer, bool answer)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}),
        close_after_answer_(close_after_answer),
        answer_(answer) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~RawBackend() {
    stop_ = true;
    boost::system::error_code ec;
    // Wake the accept with a connection of our own.
    tcp::socket s(io_);
    s.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  Backend backend() const { return Backend::Make("127.0.0.1", acceptor_.local_endpoint().port()); }
  int accepted() const { return accepted_.load(); }
  int answered() const { return answered_.load(); }
  int closed() const { return closed_.load(); }

 private:
  void Loop() {
    while (!stop_) {
      auto sock = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*sock, ec);
      if (ec || stop_) return;
      ++accepted_;
      conns_.push_back(sock);
      if (!answer_) continue;  // keep it open, never answer
      asio::streambuf buf;
      asio::read_until(*sock, buf, "\r\n\r\n", ec);
      if (ec) continue;
      static const std::string kAnswer =
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
      asio::write(*sock, asio::buffer(kAnswer), ec);
      ++answered_;
      if (close_after_answer_) {
        sock->shutdown(tcp::socket::shutdown_both, ec);
        sock->close(ec);
        ++closed_;
      }
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  bool close_after_answer_;
  bool answer_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> answered_{0};
  std::atomic<int> closed_{0};
  std::vector<std::shared_ptr<tcp::socket>> conns_;
  std::thread thread_;
};

TEST(HttpClientTest, BackendClosingAnIdleConnectionIsRetriedOnAFreshOne) {
  RawBackend backend(/*close_after_answer=*/true, /*answer=*/true);
  ClientHarness h;
  auto first = h.SendSync(backend.backend(), Post("/infer", "1"));
  ASSERT_TRUE(first.status.ok()) << first.status.ToString();
  // The backend closed the connection right after answering (while the client kept it idle);
  // a POST is not idempotent, so it must be caught before anything is written.
  for (int i = 0; i < 3; ++i) {
    while (backend.closed() < i + 1) std::this_thread::yield();
    auto r = h.SendSync(backend.backend(), Post("/infer", "2"));
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.response.body(), "ok");
  }
  EXPECT_EQ(backend.accepted(), 4);
  EXPECT_EQ(backend.answered(), 4);
}

TEST(HttpClientTest, RequestTimeoutIsDeadlineExceededNamingTheBackend) {
  RawBackend backend(/*close_after_answer=*/false, /*answer=*/false);
  ClientHarness h;
  auto start = std::chrono::steady_clock::now();
  auto r = h.SendSync(backend.backend(), Post("/infer", "1"), 100ms);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status.message().find(backend.backend().key), std::string::npos);
  EXPECT_TRUE(r.request_written);
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 2s);
}

TEST(HttpClientTest, ResponseOverTheBodyLimitIsRejected) {
  TestServer server(
      [](Request&&, Responder r) { r.Send(Response{.body = std::string(5000, 'x')}); });
  ClientOptions options;
  options.max_response_body_bytes = 1000;
  ClientHarness h(options);
  auto r = h.SendSync(server.backend(), Get("/big"));
  EXPECT_EQ(r.status.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status.message().find("1000 bytes"), std::string::npos);
  // The connection is not reused after an incomplete read.
  EXPECT_EQ(h.OnIo([&] { return h.client().open_connections(server.backend()); }), 0u);
}

TEST(HttpClientTest, HeadResponseHasNoBodyAndTheConnectionStaysUsable) {
  TestServer server([](Request&&, Responder r) { r.Send(Response{.body = "{\"a\":1}"}); });
  ClientHarness h;
  auto head = h.SendSync(server.backend(), Message{bhttp::verb::head, "/", 11});
  ASSERT_TRUE(head.status.ok()) << head.status.ToString();
  EXPECT_EQ(head.response.body(), "");
  EXPECT_EQ(head.response[bhttp::field::content_length], "7");
  auto get = h.SendSync(server.backend(), Get("/"));
  ASSERT_TRUE(get.status.ok()) << get.status.ToString();
  EXPECT_EQ(get.response.body(), "{\"a\":1}");
  EXPECT_EQ(h.OnIo([&] { return h.client().open_connections(server.backend()); }), 1u);
}

TEST(HttpClientTest, ClosedClientFailsSendsWithTheRequestBack) {
  ClientHarness h;
  h.OnIo([&] {
    h.client().Close();
    return 0;
  });
  auto r = h.SendSync(Backend::Make("127.0.0.1", 1), Post("/x", "b"));
  EXPECT_EQ(r.status.code(), StatusCode::kUnavailable);
  ASSERT_TRUE(r.unsent.has_value());
}

}  // namespace
}  // namespace quiver::http
