#include "store/process_identity.h"

#include <fstream>
#include <sstream>
#include <string>

namespace quiver::store {

StatusOr<uint64_t> ProcessStartTime(int64_t pid) {
  if (pid <= 0) return InvalidArgument("pid must be positive, got " + std::to_string(pid));
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) {
    return NotFound("no process " + std::to_string(pid));
  }
  // The command name (field 2) is in parentheses and may itself hold spaces or ')', so count
  // fields from the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return Internal("unexpected /proc/<pid>/stat: " + stat);
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  // After ')' come field 3 (state) onwards; the start time is field 22.
  for (int i = 3; i < 22; ++i) fields >> field;
  uint64_t start = 0;
  if (!(fields >> start)) return Internal("unexpected /proc/<pid>/stat: " + stat);
  return start;
}

bool IsSameProcess(int64_t pid, uint64_t start_time) {
  auto start = ProcessStartTime(pid);
  return start.ok() && *start == start_time;
}

}  // namespace quiver::store
