// The process figures every Prometheus client exports, under their standard names
// (process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds), read from /proc at scrape time.
// Thread-safe.
#pragma once

#include <string_view>

#include "common/status.h"
#include "observe/metrics_registry.h"

namespace quiver::observe {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
};

// Parses the text of /proc/<pid>/stat, given the clock ticks per second, the page size and the
// boot time (`btime` of /proc/stat, seconds since the epoch). InvalidArgument when it has too
// few fields.
StatusOr<ProcessStats> ParseProcStat(std::string_view stat, long ticks_per_second, long page_size,
                                     double boot_time);

// `btime` out of the text of /proc/stat; InvalidArgument when absent.
StatusOr<double> ParseBootTime(std::string_view proc_stat);

// Registers a collector that writes this process's figures; a figure that cannot be read is
// left out.
void AddProcessMetrics(MetricsRegistry* registry);

}  // namespace quiver::observe
