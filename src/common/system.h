// Small facts about the process and machine. Thread-safe.
#pragma once

#include <cstddef>
#include <string>

namespace quiver {

// CPUs this process may run on (its affinity mask), at least 1. Unlike
// std::thread::hardware_concurrency this respects `taskset`.
int AvailableCpus();

// Resident set size of this process in bytes, 0 when unknown.
size_t ResidentBytes();

// Directory holding the running executable, without a trailing slash.
std::string ExecutableDir();

// A random version-4 UUID string, for request ids. Uses a per-thread generator.
std::string NewUuid();

}  // namespace quiver
