// Starting and identifying replica processes: posix_spawn from a multi-threaded daemon, pidfds,
// and the /proc facts that tell a live process from a reused pid. Stateless functions, safe to
// call from any thread; a UniqueFd owns one file descriptor.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace quiver::control {

// Owns a file descriptor and closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

struct ProcessSpec {
  // argv[0] is an absolute or relative path, or a name looked up in the PATH of `env`.
  std::vector<std::string> argv;
  // "NAME=value" entries: the child's whole environment, nothing is inherited from the daemon
  // (so a replica's behaviour does not depend on the shell that started `quiver up`). When no
  // PATH is given the child gets /usr/local/bin:/usr/bin:/bin.
  std::vector<std::string> env;
  // Empty: the daemon's working directory.
  std::string working_dir;
  // stdout and stderr are appended here (created 0644); stdin is /dev/null.
  std::string log_path;
};

struct SpawnedProcess {
  pid_t pid = -1;
  UniqueFd pidfd;           // for exit detection and race-free signalling
  uint64_t start_time = 0;  // field 22 of /proc/PID/stat, the identity check for adoption
};

// Starts `spec` with posix_spawn (vfork-based in glibc: nothing but exec runs in the child, so
// it is safe in a multi-threaded process). The child gets its own process group (pgid = pid) so
// that one kill reaches everything it forks, an empty signal mask and default dispositions, and
// no file descriptors but 0, 1 and 2 (closefrom). PR_SET_PDEATHSIG is deliberately not set:
// replicas must outlive a crashed daemon so that the restarted daemon can adopt them instead of
// cutting traffic. Errors name the executable or file that failed.
StatusOr<SpawnedProcess> SpawnProcess(const ProcessSpec& spec);

// argv[0] resolved against the PATH in `env` (or the default PATH); NotFound names the program.
StatusOr<std::string> ResolveExecutable(const std::string& program,
                                        const std::vector<std::string>& env);

struct ProcStat {
  char state = '?';  // R, S, D, Z (zombie: exited, not yet reaped), ...
  pid_t pgrp = 0;
  uint64_t start_time = 0;  // clock ticks after boot; unique per pid at any one time
};

// Reads /proc/PID/stat. NotFound when the process does not exist.
StatusOr<ProcStat> ReadProcStat(pid_t pid);

// pidfd_open(2). NotFound when the process does not exist.
StatusOr<UniqueFd> OpenPidfd(pid_t pid);

// Reaps an exited child through its pidfd (waitid P_PIDFD) and describes how it ended:
// "exited with code 3", "killed by signal 9 (Killed)". nullopt when the process is not our
// child (adopted: its exit status went to its real parent) or has not exited.
std::optional<std::string> ReapChild(int pidfd);

// Sends `sig` to the process behind `pidfd` (cannot hit a reused pid).
Status SignalPidfd(int pidfd, int sig);

// Sends `sig` to every process in group `pgid`; a group that no longer exists is not an error.
void SignalProcessGroup(pid_t pgid, int sig);

// A stable fingerprint of a command line (FNV-1a 64, hex), persisted with an adopted replica
// so that a daemon restarted with a changed spec does not adopt the old process.
std::string ArgvHash(const std::vector<std::string>& argv);

}  // namespace quiver::control
