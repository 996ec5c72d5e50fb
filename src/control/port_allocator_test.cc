#include "control/port_allocator.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

namespace quiver::control {
namespace {

bool CanBind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

TEST(PortAllocatorTest, AllocatedPortsAreUniqueFreeAndReserved) {
  PortAllocator ports;
  std::set<int> seen;
  for (int i = 0; i < 200; ++i) {
    auto port = ports.Allocate();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    EXPECT_TRUE(seen.insert(*port).second) << "port " << *port << " handed out twice";
    EXPECT_TRUE(ports.IsReserved(*port));
  }
  EXPECT_EQ(ports.reserved_count(), 200u);
  EXPECT_TRUE(CanBind(*seen.begin())) << "an allocated port must be free for the replica";
}

TEST(PortAllocatorTest, ReserveRejectsDuplicatesAndBadPorts) {
  PortAllocator ports;
  auto port = ports.Allocate();
  ASSERT_TRUE(port.ok());
  Status again = ports.Reserve(*port);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(again.message().find(std::to_string(*port)), std::string::npos);
  EXPECT_EQ(ports.Reserve(0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ports.Reserve(70000).code(), StatusCode::kInvalidArgument);
  ports.Release(*port);
  EXPECT_FALSE(ports.IsReserved(*port));
  EXPECT_TRUE(ports.Reserve(*port).ok());
}

TEST(PortAllocatorTest, RejectsANonIpv4Host) {
  PortAllocator ports("localhost");
  auto port = ports.Allocate();
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(port.status().message().find("'localhost'"), std::string::npos);
}

}  // namespace
}  // namespace quiver::control
