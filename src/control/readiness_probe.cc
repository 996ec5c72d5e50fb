#include "control/readiness_probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace quiver::control {
namespace {

// A health answer is one status line; anything longer than this without one is not HTTP.
constexpr size_t kMaxStatusLineBytes = 4096;

std::string ErrnoText(int err) {
  const char* text = strerrordesc_np(err);
  return text ? std::string(text) : "error " + std::to_string(err);
}

}  // namespace

ReadinessProbe::ReadinessProbe(ProbeTarget target, TimePoint deadline)
    : target_(std::move(target)), deadline_(deadline) {}

std::unique_ptr<ReadinessProbe> ReadinessProbe::Begin(const ProbeTarget& target,
                                                      TimePoint deadline) {
  std::unique_ptr<ReadinessProbe> probe(new ReadinessProbe(target, deadline));
  if (target.port <= 0 || target.port > 65535) {
    probe->Finish(false, "port " + std::to_string(target.port) + " is not a valid port");
    return probe;
  }
  sockaddr_storage address{};
  socklen_t address_len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, target.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(target.port));
    address_len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, target.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(target.port));
    address_len = sizeof(sockaddr_in6);
  } else {
    probe->Finish(false, "host '" + target.host + "' is not an IP address literal");
    return probe;
  }
  probe->socket_ =
      UniqueFd(::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe->socket_.valid()) {
    probe->Finish(false, "socket: " + ErrnoText(errno));
    return probe;
  }
  if (target.kind == ProbeTarget::Kind::kHttpGet) {
    probe->request_ = "GET " + target.path + " HTTP/1.1\r\nHost: " + target.host + ":" +
                      std::to_string(target.port) +
                      "\r\nUser-Agent: quiver-supervisor\r\nAccept: */*\r\n"
                      "Connection: close\r\n\r\n";
  }
  if (::connect(probe->socket_.get(), reinterpret_cast<sockaddr*>(&address), address_len) == 0) {
    // Loopback connects can complete at once.
    probe->OnReady(POLLOUT);
  } else if (errno != EINPROGRESS) {
    probe->Finish(false, "connect to " + target.host + ":" + std::to_string(target.port) + ": " +
                             ErrnoText(errno));
  }
  return probe;
}

short ReadinessProbe::events() const {
  if (result_) return 0;
  return phase_ == Phase::kReading ? POLLIN : POLLOUT;
}

void ReadinessProbe::Finish(bool ok, std::string detail) {
  if (result_) return;
  result_ = ProbeResult{ok, std::move(detail)};
  socket_.Reset();
}

void ReadinessProbe::OnReady(short revents) {
  if (result_) return;
  if (phase_ == Phase::kConnecting) {
    int error = 0;
    socklen_t len = sizeof(error);
    if (::getsockopt(socket_.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
    if (error != 0) {
      Finish(false, "connect to " + target_.host + ":" + std::to_string(target_.port) + ": " +
                        ErrnoText(error));
      return;
    }
    if ((revents & POLLOUT) == 0) return;
    if (target_.kind == ProbeTarget::Kind::kTcpConnect) {
      Finish(true, "TCP connect succeeded");
      return;
    }
    phase_ = Phase::kSending;
  }
  if (phase_ == Phase::kSending) {
    Send();
    return;
  }
  Read();
}

void ReadinessProbe::Send() {
  while (sent_ < request_.size()) {
    const ssize_t n =
        ::send(socket_.get(), request_.data() + sent_, request_.size() - sent_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      Finish(false, "sending the probe request: " + ErrnoText(errno));
      return;
    }
    sent_ += static_cast<size_t>(n);
  }
  phase_ = Phase::kReading;
}

void ReadinessProbe::Read() {
  char buffer[1024];
  for (;;) {
    const ssize_t n = ::recv(socket_.get(), buffer, sizeof(buffer), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      Finish(false, "reading the probe answer: " + ErrnoText(errno));
      return;
    }
    if (n == 0) {
      Finish(false, "connection closed without an HTTP status line");
      return;
    }
    response_.append(buffer, static_cast<size_t>(n));
    const size_t eol = response_.find("\r\n");
    if (eol == std::string::npos) {
      if (response_.size() > kMaxStatusLineBytes) Finish(false, "answer is not HTTP");
      continue;
    }
    // "HTTP/1.1 200 OK"
    const std::string line = response_.substr(0, eol);
    int code = 0;
    if (line.rfind("HTTP/", 0) != 0 || line.size() < 12 ||
        std::sscanf(line.c_str() + line.find(' '), " %3d", &code) != 1) {
      Finish(false, "answer is not HTTP: '" + line.substr(0, 80) + "'");
      return;
    }
    Finish(code >= 200 && code < 400, "GET " + target_.path + ": HTTP " + std::to_string(code));
    return;
  }
}

void ReadinessProbe::Expire() {
  Finish(false,
         phase_ == Phase::kConnecting
             ? "connect to " + target_.host + ":" + std::to_string(target_.port) + " timed out"
             : "no answer to GET " + target_.path + " before the probe timeout");
}

ProbeResult RunProbe(const ProbeTarget& target, Duration timeout) {
  const TimePoint deadline = SteadyClock::now() + timeout;
  auto probe = ReadinessProbe::Begin(target, deadline);
  while (!probe->result()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      probe->Expire();
      break;
    }
    pollfd pfd{probe->fd(), probe->events(), 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(left.count()) + 1);
    if (rc > 0) probe->OnReady(pfd.revents);
  }
  return *probe->result();
}

}  // namespace quiver::control
