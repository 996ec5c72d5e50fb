#include "http/server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <thread>

namespace quiver::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options, Handler handler) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 2;
    auto s = HttpServer::Create(options, std::move(handler));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    thread_ = std::thread([this] { server_->Run(); });
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown();
      thread_.join();
    }
  }

  // Sends raw bytes on a new connection and reads until the peer closes or `until` is seen.
  std::string Exchange(const std::string& bytes, const std::string& until = "",
                       tcp::socket* keep = nullptr) {
    tcp::socket local(io_);
    tcp::socket& s = keep ? *keep : local;
    if (!s.is_open()) s.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
    asio::write(s, asio::buffer(bytes));
    std::string got;
    char buf[4096];
    for (;;) {
      boost::system::error_code ec;
      size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf, n);
      if (!until.empty() && got.find(until) != std::string::npos) break;
    }
    return got;
  }

  asio::io_context io_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
};

Handler EchoBody() {
  return [](Request&& req, Responder r) {
    std::string body = std::string(req.method()) + " " + std::string(req.target()) + " " +
                       req.body() + " " + std::string(req.header("x-test"));
    r.Send({.status = 200, .body = body, .content_type = "text/plain"});
  };
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequests) {
  Start({}, EchoBody());
  tcp::socket s(io_);
  std::string r1 = Exchange(
      "POST /a HTTP/1.1\r\nHost: x\r\nX-Test: t1\r\nContent-Length: 3\r\n\r\nabc", "abc t1", &s);
  EXPECT_NE(r1.find("HTTP/1.1 200 OK"), std::string::npos) << r1;
  EXPECT_NE(r1.find("POST /a abc t1"), std::string::npos) << r1;
  std::string r2 = Exchange("GET /b HTTP/1.1\r\nHost: x\r\n\r\n", "GET /b", &s);
  EXPECT_NE(r2.find("GET /b  "), std::string::npos) << r2;
}

TEST_F(HttpServerTest, AnswersLaterFromAnotherThread) {
  std::vector<std::thread> workers;
  std::mutex mu;
  Start({}, [&](Request&&, Responder r) {
    std::lock_guard<std::mutex> lock(mu);
    workers.emplace_back([r = std::move(r)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      r.Send({.status = 201, .body = "later"});
    });
  });
  std::string got = Exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(got.find("HTTP/1.1 201"), std::string::npos) << got;
  EXPECT_NE(got.find("later"), std::string::npos);
  std::lock_guard<std::mutex> lock(mu);
  for (auto& w : workers) w.join();
}

TEST_F(HttpServerTest, DroppedResponderAnswers500) {
  Start({}, [](Request&&, Responder) {});
  std::string got = Exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(got.find("HTTP/1.1 500"), std::string::npos) << got;
  EXPECT_NE(got.find("dropped without an answer"), std::string::npos) << got;
}

TEST_F(HttpServerTest, LimitsGiveClearErrors) {
  ServerOptions o;
  o.max_body_bytes = 10;
  o.max_header_bytes = 200;
  Start(o, EchoBody());
  std::string big = Exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n01234567890");
  EXPECT_NE(big.find("HTTP/1.1 413"), std::string::npos) << big;
  EXPECT_NE(big.find("limit of 10 bytes"), std::string::npos) << big;
  std::string hdr = Exchange("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(300, 'a') +
                             "\r\n\r\n");
  EXPECT_NE(hdr.find("HTTP/1.1 431"), std::string::npos) << hdr;
  std::string bad = Exchange("NOT HTTP AT ALL\r\n\r\n");
  EXPECT_NE(bad.find("HTTP/1.1 400"), std::string::npos) << bad;
  EXPECT_NE(bad.find("malformed HTTP request"), std::string::npos) << bad;
}

TEST_F(HttpServerTest, SlowClientGets408AndIdleIsClosed) {
  ServerOptions o;
  o.read_timeout = std::chrono::milliseconds(200);
  o.idle_timeout = std::chrono::milliseconds(300);
  Start(o, EchoBody());
  auto start = std::chrono::steady_clock::now();
  // Headers say 5 bytes of body, only 2 arrive.
  std::string slow = Exchange("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab");
  EXPECT_NE(slow.find("HTTP/1.1 408"), std::string::npos) << slow;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  // An idle connection is closed without a response.
  std::string idle = Exchange("");
  EXPECT_EQ(idle, "");
}

TEST_F(HttpServerTest, ShutdownFinishesInFlightRequests) {
  std::thread worker;
  Start({}, [&](Request&&, Responder r) {
    worker = std::thread([r = std::move(r)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      r.Send({.status = 200, .body = "done"});
    });
  });
  std::string got;
  std::thread client([&] { got = Exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); });
  while (server_->in_flight() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  server_->Shutdown();
  client.join();
  thread_.join();
  server_.reset();
  worker.join();
  EXPECT_NE(got.find("HTTP/1.1 200"), std::string::npos) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
  EXPECT_NE(got.find("done"), std::string::npos);
}

}  // namespace
}  // namespace quiver::http
