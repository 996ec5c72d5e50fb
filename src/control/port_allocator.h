// Picks free loopback ports for replicas. The kernel chooses (bind to port 0, read the port,
// close); a reservation set guarantees that two replicas never get the same port even though
// the port is not held open between allocation and the replica's own bind. Reservations live
// only in memory: the caller records each replica's ports in its store and re-reserves them
// after a daemon restart (Reserve) before allocating new ones. Thread-safe.
//
// The gap between closing the probe socket and the replica binding leaves a small window in
// which an unrelated process could take the port; the replica then fails to bind, exits, and
// the supervisor's restart reports it.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "common/status.h"

namespace quiver::control {

class PortAllocator {
 public:
  // `host`: the IPv4 address replicas listen on (127.0.0.1 by default).
  explicit PortAllocator(std::string host = "127.0.0.1");

  // A port that is free now and not reserved; it is reserved until Release.
  StatusOr<int> Allocate();
  // Marks a known port (from a persisted replica record) as taken. AlreadyExists when it is
  // reserved already, InvalidArgument when outside 1..65535.
  Status Reserve(int port);
  // Returns a port to the pool; releasing a port that is not reserved does nothing.
  void Release(int port);
  bool IsReserved(int port) const;
  size_t reserved_count() const;

 private:
  const std::string host_;
  mutable std::mutex mu_;
  std::set<int> reserved_;  // guarded by mu_
};

}  // namespace quiver::control
