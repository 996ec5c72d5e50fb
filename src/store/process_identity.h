// Process identity across daemon restarts: a pid alone may have been reused by the time a
// restarted `quiver up` looks at it, so a replica is recorded with its pid and the process's
// start time from /proc/<pid>/stat; both must match for "this is still my child". Thread-safe.
#pragma once

#include <cstdint>

#include "common/status.h"

namespace quiver::store {

// The start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat). NotFound
// when there is no such process.
StatusOr<uint64_t> ProcessStartTime(int64_t pid);

// True when `pid` exists and started at `start_time` (as ProcessStartTime reported it).
bool IsSameProcess(int64_t pid, uint64_t start_time);

}  // namespace quiver::store
