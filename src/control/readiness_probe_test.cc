#include "control/readiness_probe.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

namespace quiver::control {
namespace {

using std::chrono::milliseconds;

// A listening loopback socket; optionally answers one connection with a fixed response.
class TestListener {
 public:
  TestListener() {
    fd_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(fd_.get(), 8), 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~TestListener() {
    if (server_.joinable()) server_.join();
  }

  // Accepts one connection, records the request head, sends `response`, closes.
  void AnswerOnce(std::string response) {
    server_ = std::thread([this, response] {
      UniqueFd conn(::accept(fd_.get(), nullptr, nullptr));
      char buf[2048];
      while (request_.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(conn.get(), buf, sizeof(buf), 0);
        if (n <= 0) break;
        request_.append(buf, static_cast<size_t>(n));
      }
      ::send(conn.get(), response.data(), response.size(), MSG_NOSIGNAL);
    });
  }
  void Join() { server_.join(); }

  int port() const { return port_; }
  const std::string& request() const { return request_; }

 private:
  UniqueFd fd_;
  int port_ = 0;
  std::thread server_;
  std::string request_;
};

ProbeTarget Http(int port, std::string path = "/v2/health/ready") {
  ProbeTarget t;
  t.port = port;
  t.path = std::move(path);
  return t;
}

TEST(ReadinessProbeTest, HttpOkIsReady) {
  TestListener server;
  server.AnswerOnce("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  ProbeResult r = RunProbe(Http(server.port()), std::chrono::seconds(5));
  server.Join();
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_EQ(r.detail, "GET /v2/health/ready: HTTP 200");
  EXPECT_EQ(server.request().rfind("GET /v2/health/ready HTTP/1.1\r\n", 0), 0u) << server.request();
}

TEST(ReadinessProbeTest, V1ModelPathAndServerErrorIsNotReady) {
  TestListener server;
  server.AnswerOnce("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
  ProbeResult r = RunProbe(Http(server.port(), "/v1/models/iris"), std::chrono::seconds(5));
  server.Join();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "GET /v1/models/iris: HTTP 503");
  EXPECT_EQ(server.request().rfind("GET /v1/models/iris HTTP/1.1\r\n", 0), 0u);
}

TEST(ReadinessProbeTest, GarbageAnswerIsNotReady) {
  TestListener server;
  server.AnswerOnce("SSH-2.0-OpenSSH\r\n");
  ProbeResult r = RunProbe(Http(server.port()), std::chrono::seconds(5));
  server.Join();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("not HTTP"), std::string::npos) << r.detail;
}

TEST(ReadinessProbeTest, RefusedConnectionIsNotReady) {
  int port;
  {
    TestListener closed;
    port = closed.port();
  }
  ProbeResult r = RunProbe(Http(port), std::chrono::seconds(5));
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("refused"), std::string::npos) << r.detail;
}

TEST(ReadinessProbeTest, SilentServerTimesOut) {
  TestListener server;  // the kernel accepts into the backlog; nobody answers
  const auto start = SteadyClock::now();
  ProbeResult r = RunProbe(Http(server.port()), milliseconds(200));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "no answer to GET /v2/health/ready before the probe timeout");
  EXPECT_GE(SteadyClock::now() - start, milliseconds(200));
}

TEST(ReadinessProbeTest, TcpConnectNeedsOnlyAListener) {
  TestListener server;
  ProbeTarget t;
  t.kind = ProbeTarget::Kind::kTcpConnect;
  t.port = server.port();
  EXPECT_TRUE(RunProbe(t, std::chrono::seconds(5)).ok);
}

TEST(ReadinessProbeTest, BadTargetsFailWithTheField) {
  ProbeTarget t = Http(0);
  EXPECT_EQ(RunProbe(t, milliseconds(100)).detail, "port 0 is not a valid port");
  t = Http(8080);
  t.host = "localhost";
  EXPECT_EQ(RunProbe(t, milliseconds(100)).detail, "host 'localhost' is not an IP address literal");
}

}  // namespace
}  // namespace quiver::control
