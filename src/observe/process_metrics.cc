#include "observe/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "observe/prometheus_text.h"

namespace quiver::observe {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool ParseNumber(std::string_view s, double* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

StatusOr<ProcessStats> ParseProcStat(std::string_view stat, long ticks_per_second, long page_size,
                                     double boot_time) {
  // The command name (field 2) is in parentheses and may hold spaces or ')': fields resume after
  // the last ')'.
  size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return InvalidArgument("/proc/self/stat: no command name");
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::string_view rest = stat.substr(close + 1);
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\n')) ++i;
    size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j > i) fields.push_back(rest.substr(i, j - i));
    i = j;
  }
  // proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24.
  auto field = [&](int number, double* out) {
    size_t at = static_cast<size_t>(number - 3);
    return at < fields.size() && ParseNumber(fields[at], out);
  };
  double utime, stime, start, vsize, rss;
  if (!field(14, &utime) || !field(15, &stime) || !field(22, &start) || !field(23, &vsize) ||
      !field(24, &rss)) {
    return InvalidArgument("/proc/self/stat: expected at least 24 numeric fields");
  }
  double ticks = static_cast<double>(ticks_per_second);
  ProcessStats s;
  s.cpu_seconds = (utime + stime) / ticks;
  s.resident_bytes = rss * static_cast<double>(page_size);
  s.virtual_bytes = vsize;
  s.start_time_seconds = boot_time + start / ticks;
  return s;
}

StatusOr<double> ParseBootTime(std::string_view proc_stat) {
  size_t at = 0;
  while (at < proc_stat.size()) {
    size_t end = proc_stat.find('\n', at);
    if (end == std::string_view::npos) end = proc_stat.size();
    std::string_view line = proc_stat.substr(at, end - at);
    if (line.starts_with("btime ")) {
      double v;
      if (ParseNumber(line.substr(6), &v)) return v;
    }
    at = end + 1;
  }
  return InvalidArgument("/proc/stat: no btime line");
}

void AddProcessMetrics(MetricsRegistry* registry) {
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  // The boot time does not change; read once.
  StatusOr<double> boot = ParseBootTime(ReadFile("/proc/stat"));
  double boot_time = boot.ok() ? *boot : 0;
  registry->AddCollector([ticks, page, boot_time](PrometheusWriter& out) {
    StatusOr<ProcessStats> s = ParseProcStat(ReadFile("/proc/self/stat"), ticks, page, boot_time);
    if (s.ok()) {
      out.Family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 MetricType::kCounter);
      out.Sample("process_cpu_seconds_total", s->cpu_seconds);
      out.Family("process_resident_memory_bytes", "Resident memory size in bytes.",
                 MetricType::kGauge);
      out.Sample("process_resident_memory_bytes", s->resident_bytes);
      out.Family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                 MetricType::kGauge);
      out.Sample("process_virtual_memory_bytes", s->virtual_bytes);
      if (boot_time > 0) {
        out.Family("process_start_time_seconds",
                   "Start time of the process since unix epoch in seconds.", MetricType::kGauge);
        out.Sample("process_start_time_seconds", s->start_time_seconds);
      }
    }
    std::error_code ec;
    double fds = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++fds;
    }
    if (!ec) {
      out.Family("process_open_fds", "Number of open file descriptors.", MetricType::kGauge);
      out.Sample("process_open_fds", fds);
    }
    rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      out.Family("process_max_fds", "Maximum number of open file descriptors.", MetricType::kGauge);
      out.Sample("process_max_fds", limit.rlim_cur == RLIM_INFINITY
                                        ? std::numeric_limits<double>::infinity()
                                        : static_cast<double>(limit.rlim_cur));
    }
  });
}

}  // namespace quiver::observe
