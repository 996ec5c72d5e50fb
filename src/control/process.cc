#include "control/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace quiver::control {
namespace {

constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

// glibc 2.36's <sys/pidfd.h> lacks extern "C", so its wrappers do not link from C++; the
// system calls are used directly.
int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }
int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0u));
}

std::string ErrnoText(int err) {
  const char* text = strerrordesc_np(err);
  return text ? std::string(text) : "error " + std::to_string(err);
}

// RAII for the posix_spawn attribute objects.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

std::string PathOf(const std::vector<std::string>& env) {
  for (const auto& entry : env) {
    if (entry.rfind("PATH=", 0) == 0) return entry.substr(5);
  }
  return kDefaultPath;
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    Reset();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

void UniqueFd::Reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

StatusOr<std::string> ResolveExecutable(const std::string& program,
                                        const std::vector<std::string>& env) {
  if (program.empty()) return InvalidArgument("argv[0]: the program name is empty");
  if (program.find('/') != std::string::npos) {
    if (::access(program.c_str(), X_OK) != 0) {
      return NotFound("argv[0]: '" + program + "' is not an executable file (" + ErrnoText(errno) +
                      ")");
    }
    return program;
  }
  const std::string path = PathOf(env);
  size_t begin = 0;
  while (begin <= path.size()) {
    size_t end = path.find(':', begin);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(begin, end - begin);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    begin = end + 1;
  }
  return NotFound("argv[0]: program '" + program + "' not found in PATH '" + path + "'");
}

StatusOr<SpawnedProcess> SpawnProcess(const ProcessSpec& spec) {
  if (spec.argv.empty()) return InvalidArgument("argv: must name a program to run");
  if (spec.log_path.empty()) return InvalidArgument("log_path: must not be empty");
  QUIVER_ASSIGN_OR_RETURN(std::string exe, ResolveExecutable(spec.argv[0], spec.env));

  UniqueFd log(::open(spec.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log.valid()) {
    return Internal("log_path: cannot open '" + spec.log_path +
                    "' for appending: " + ErrnoText(errno));
  }
  if (log.get() <= STDERR_FILENO) {
    // The daemon runs without a standard stream; keep the log fd off 0-2 so the dup2 below
    // is a real duplication (which clears close-on-exec).
    UniqueFd moved(::fcntl(log.get(), F_DUPFD_CLOEXEC, 3));
    if (!moved.valid()) return Internal("cannot duplicate the log fd: " + ErrnoText(errno));
    log = std::move(moved);
  }

  SpawnSetup setup;
  posix_spawn_file_actions_addopen(&setup.actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, log.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&setup.actions, log.get(), STDERR_FILENO);
  // Whatever the daemon has open (listening sockets, the SQLite file, other replicas' pidfds)
  // must not leak into a replica, even fds some library opened without O_CLOEXEC.
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, STDERR_FILENO + 1);
  if (!spec.working_dir.empty()) {
    struct stat st;
    if (::stat(spec.working_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return InvalidArgument("working_dir: '" + spec.working_dir + "' is not a directory");
    }
    posix_spawn_file_actions_addchdir_np(&setup.actions, spec.working_dir.c_str());
  }

  posix_spawnattr_setpgroup(&setup.attr, 0);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  // The daemon blocks and ignores signals of its own (SIGPIPE, the ones it sigwaits for); the
  // replica must start with the defaults or it would, for instance, ignore SIGTERM.
  posix_spawnattr_setsigmask(&setup.attr, &empty);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  posix_spawnattr_setflags(&setup.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> env = spec.env;
  bool has_path = false;
  for (const auto& e : env) has_path = has_path || e.rfind("PATH=", 0) == 0;
  if (!has_path) env.push_back(std::string("PATH=") + kDefaultPath);
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  SpawnedProcess process;
  const int rc = ::posix_spawn(&process.pid, exe.c_str(), &setup.actions, &setup.attr, argv.data(),
                               envp.data());
  if (rc != 0) {
    return Internal("cannot start '" + exe + "': " + ErrnoText(rc));
  }
  // The child is ours and not yet reaped, so its pid cannot be reused before pidfd_open.
  const int pidfd = PidfdOpen(process.pid);
  if (pidfd < 0) {
    const int err = errno;
    ::kill(process.pid, SIGKILL);
    ::waitpid(process.pid, nullptr, 0);
    return Internal("pidfd_open(" + std::to_string(process.pid) + "): " + ErrnoText(err));
  }
  process.pidfd = UniqueFd(pidfd);
  auto stat = ReadProcStat(process.pid);
  if (stat.ok()) process.start_time = stat->start_time;
  return process;
}

StatusOr<ProcStat> ReadProcStat(pid_t pid) {
  if (pid <= 0) return InvalidArgument("pid: " + std::to_string(pid) + " is not a process id");
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) {
    return NotFound("process " + std::to_string(pid) + " does not exist");
  }
  // The command name (field 2) is in parentheses and may itself contain ") ", so the fields
  // are counted from the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) {
    return Internal("cannot parse /proc/" + std::to_string(pid) + "/stat");
  }
  std::istringstream fields(line.substr(close + 1));
  ProcStat stat;
  std::string skip;
  long long ppid = 0, pgrp = 0;
  fields >> stat.state >> ppid >> pgrp;
  // Fields 6..21, then 22 is starttime.
  for (int field = 6; field <= 21; ++field) fields >> skip;
  fields >> stat.start_time;
  if (!fields) return Internal("cannot parse /proc/" + std::to_string(pid) + "/stat");
  stat.pgrp = static_cast<pid_t>(pgrp);
  return stat;
}

StatusOr<UniqueFd> OpenPidfd(pid_t pid) {
  const int fd = PidfdOpen(pid);
  if (fd < 0) {
    if (errno == ESRCH) return NotFound("process " + std::to_string(pid) + " does not exist");
    return Internal("pidfd_open(" + std::to_string(pid) + "): " + ErrnoText(errno));
  }
  return UniqueFd(fd);
}

std::optional<std::string> ReapChild(int pidfd) {
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info,
               WEXITED | WNOHANG) != 0) {
    return std::nullopt;  // ECHILD: not our child
  }
  if (info.si_pid == 0) return std::nullopt;  // still running
  if (info.si_code == CLD_EXITED) return "exited with code " + std::to_string(info.si_status);
  const char* name = strsignal(info.si_status);
  return std::string(info.si_code == CLD_DUMPED ? "dumped core on signal " : "killed by signal ") +
         std::to_string(info.si_status) + " (" + (name ? name : "unknown") + ")";
}

Status SignalPidfd(int pidfd, int sig) {
  if (PidfdSendSignal(pidfd, sig) != 0 && errno != ESRCH) {
    return Internal("pidfd_send_signal(" + std::to_string(sig) + "): " + ErrnoText(errno));
  }
  return Status::Ok();
}

void SignalProcessGroup(pid_t pgid, int sig) {
  // Group 0 or 1 would mean "our own group" or "everyone": never.
  if (pgid > 1) ::kill(-pgid, sig);
}

std::string ArgvHash(const std::vector<std::string>& argv) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  auto mix = [&](unsigned char c) {
    hash ^= c;
    hash *= 0x100000001b3ULL;  // FNV prime
  };
  for (const auto& arg : argv) {
    for (unsigned char c : arg) mix(c);
    mix(0);  // separator: {"ab","c"} and {"a","bc"} differ
  }
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

}  // namespace quiver::control
