// A replica's log file: size-capped rotation and reading its last lines for failure reports.
// Stateless functions, safe from any thread (two callers rotating the same file at once is the
// caller's problem; the Supervisor does it from its one thread).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace quiver::control {

// When `path` is larger than `max_bytes`, copies it to `path`.1 (replacing the previous one) and
// truncates it to zero; returns whether it rotated. Copy-and-truncate rather than rename
// because the replica holds the file open with O_APPEND and must keep doing so after the daemon
// crashed (a pipe through the daemon would break, and with it re-adoption): after the
// truncation its next write lands at the new end, offset 0. Lines written between the copy and
// the truncation are lost, the usual price of copytruncate.
StatusOr<bool> RotateLogIfLarger(const std::string& path, uint64_t max_bytes);

// The last `max_lines` lines of `path` (at most `max_bytes` are read from its end), for a
// failure report. Empty when the file does not exist or is empty.
std::string ReadLogTail(const std::string& path, int max_lines, uint64_t max_bytes = 16384);

}  // namespace quiver::control
