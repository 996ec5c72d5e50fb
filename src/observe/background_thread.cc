#include "observe/background_thread.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace quiver::observe {

void LowerCurrentThreadPriority(int increment) {
  // On Linux a nice value belongs to a thread (PRIO_PROCESS with a thread id), unlike POSIX.
  auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  int current = getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return;
  setpriority(PRIO_PROCESS, tid, std::min(current + increment, 19));
}

}  // namespace quiver::observe
