#include "control/port_allocator.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <cerrno>

#include "control/process.h"

namespace quiver::control {
namespace {

// The kernel hands out ports from the ephemeral range in a pseudo-random order, so a reserved
// port comes back rarely; a few tries make a collision practically impossible.
constexpr int kMaxAttempts = 64;

}  // namespace

PortAllocator::PortAllocator(std::string host) : host_(std::move(host)) {}

StatusOr<int> PortAllocator::Allocate() {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  if (inet_pton(AF_INET, host_.c_str(), &address.sin_addr) != 1) {
    return InvalidArgument("host: '" + host_ + "' is not an IPv4 address");
  }
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    UniqueFd socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!socket.valid()) return Internal(std::string("socket: ") + strerrordesc_np(errno));
    address.sin_port = 0;
    if (::bind(socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return Unavailable("cannot bind a free port on " + host_ + ": " + strerrordesc_np(errno));
    }
    sockaddr_in bound{};
    socklen_t len = sizeof(bound);
    if (::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
      return Internal(std::string("getsockname: ") + strerrordesc_np(errno));
    }
    const int port = ntohs(bound.sin_port);
    std::lock_guard lock(mu_);
    if (reserved_.insert(port).second) return port;
  }
  return ResourceExhausted("no free port on " + host_ + " after " + std::to_string(kMaxAttempts) +
                           " attempts");
}

Status PortAllocator::Reserve(int port) {
  if (port <= 0 || port > 65535) {
    return InvalidArgument("port: " + std::to_string(port) + " is outside 1..65535");
  }
  std::lock_guard lock(mu_);
  if (!reserved_.insert(port).second) {
    return {StatusCode::kAlreadyExists,
            "port " + std::to_string(port) + " is already reserved for another replica"};
  }
  return Status::Ok();
}

void PortAllocator::Release(int port) {
  std::lock_guard lock(mu_);
  reserved_.erase(port);
}

bool PortAllocator::IsReserved(int port) const {
  std::lock_guard lock(mu_);
  return reserved_.count(port) > 0;
}

size_t PortAllocator::reserved_count() const {
  std::lock_guard lock(mu_);
  return reserved_.size();
}

}  // namespace quiver::control
