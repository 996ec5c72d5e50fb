#include "runtimes/python/worker_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>

extern char** environ;

namespace quiver::python_runtime {
namespace {

// The child's descriptors: the socket and the region, as worker_main.cc expects them.
constexpr int kChildSocketFd = 3;
constexpr int kChildRegionFd = 4;

// A descriptor duplicated above the child's fixed numbers, so dup2 in the child cannot
// overwrite one source with another. Close-on-exec; closed by the destructor.
class HighFd {
 public:
  explicit HighFd(int fd) : fd_(::fcntl(fd, F_DUPFD_CLOEXEC, 10)) {}
  ~HighFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  HighFd(const HighFd&) = delete;
  HighFd& operator=(const HighFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The server's environment with `overrides` ("NAME=value") replacing entries of the same name.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& o : overrides) {
      if (std::string_view(o).substr(0, o.find('=')) == name) replaced = true;
    }
    if (!replaced) env.emplace_back(entry);
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

std::string DescribeWaitStatus(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "signal " + std::to_string(sig) + (name ? std::string(": ") + name : "");
  }
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  return "wait status " + std::to_string(status);
}

}  // namespace

PythonWorker::PythonWorker(const WorkerOptions& options, SharedRegion region)
    : options_(options), region_(std::move(region)) {}

StatusOr<std::unique_ptr<PythonWorker>> PythonWorker::Start(const WorkerOptions& options) {
  QUIVER_ASSIGN_OR_RETURN(
      SharedRegion region,
      SharedRegion::Create("quiver-python:" + options.model_name, options.initial_region_bytes));
  std::unique_ptr<PythonWorker> worker(new PythonWorker(options, std::move(region)));

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Internal("socketpair for the python worker failed: " +
                    std::string(std::strerror(errno)));
  }
  worker->socket_ = sv[0];
  HighFd child_socket(sv[1]);
  ::close(sv[1]);
  HighFd child_region(worker->region_.fd());
  if (child_socket.get() < 0 || child_region.get() < 0) {
    return Internal("duplicating descriptors for the python worker failed: " +
                    std::string(std::strerror(errno)));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_socket.get(), kChildSocketFd);
  posix_spawn_file_actions_adddup2(&actions, child_region.get(), kChildRegionFd);
  // print() in a model goes to the server's log (stderr), never into its stdout.
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  // Nothing else of the server's (listening sockets, other workers' sockets) leaks into the
  // worker, even descriptors another thread opened without close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&actions, kChildRegionFd + 1);
  const std::string working_dir = options.working_dir.string();
  if (!working_dir.empty()) posix_spawn_file_actions_addchdir_np(&actions, working_dir.c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group: a terminal's Ctrl-C reaches the server, which drains and then stops
  // its workers, rather than killing the workers under requests in flight.
  posix_spawnattr_setpgroup(&attr, 0);
  // The server blocks its termination signals in every thread (it waits for them with
  // sigwait); the worker must not inherit that mask or ignored dispositions.
  sigset_t empty, defaults;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr, &empty);
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) {
    sigaddset(&defaults, sig);
  }
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  const std::string exe = options.executable.string();
  std::vector<std::string> args = {exe, "--socket-fd=" + std::to_string(kChildSocketFd),
                                   "--region-fd=" + std::to_string(kChildRegionFd),
                                   "--python-lib=" + options.python_lib.string(),
                                   "--model=" + options.model_name};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = ChildEnvironment(options.environment);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  int rc = ::posix_spawn(&worker->pid_, exe.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    worker->pid_ = -1;
    worker->alive_ = false;
    worker->reaped_ = true;
    return Internal("cannot start the python worker " + exe + ": " + std::strerror(rc));
  }
  TransportStatus sent = WriteFrame(worker->socket_, FrameKind::kLoad, options.load_header, {});
  if (!sent.ok()) return worker->Died("while starting", sent);
  return worker;
}

PythonWorker::~PythonWorker() {
  BeginStop();
  if (!reaped_) Reap(options_.stop_grace);
}

void PythonWorker::BeginStop() {
  if (socket_ >= 0) {
    ::close(socket_);
    socket_ = -1;
  }
}

std::string PythonWorker::Reap(std::chrono::milliseconds grace) {
  if (reaped_ || pid_ <= 0) return "already reaped";
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  auto sleep = std::chrono::microseconds(200);
  for (;;) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {  // reaped by someone else (ECHILD)
      reaped_ = true;
      return "unknown cause";
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(sleep);
    sleep = std::min(sleep * 2, std::chrono::microseconds(20000));
  }
  reaped_ = true;
  return DescribeWaitStatus(status);
}

Status PythonWorker::Died(std::string_view during, const TransportStatus& transport) {
  alive_ = false;
  BeginStop();
  // A process that closed its socket is exiting; one that talks nonsense is killed now.
  if (transport.error != TransportError::kClosed && pid_ > 0 && !reaped_) ::kill(pid_, SIGKILL);
  std::string how = Reap(options_.stop_grace);
  std::string message =
      "python worker for model '" + options_.model_name + "' (pid " + std::to_string(pid_) + ") ";
  if (transport.error == TransportError::kClosed) {
    message += "died (" + how + ") " + std::string(during);
  } else {
    message += "failed " + std::string(during) + " (" + transport.message + ") and was killed";
  }
  return Internal(std::move(message));
}

bool PythonWorker::Probe() {
  if (!alive_) return false;
  pollfd p{socket_, POLLRDHUP, 0};
  int r = ::poll(&p, 1, 0);
  if (r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0) {
    (void)Died("while idle", {TransportError::kClosed, "end of stream"});
    return false;
  }
  return true;
}

Status PythonWorker::Exchange(FrameKind kind, std::string_view header, std::string_view payload,
                              Frame* answer, std::string_view during) {
  if (!alive_) {
    return Internal("python worker for model '" + options_.model_name + "' is not running");
  }
  TransportStatus t = WriteFrame(socket_, kind, header, payload);
  if (t.ok() && options_.request_timeout.count() > 0) {
    // The answer's first byte must come in time; the rest of a frame follows it at once.
    pollfd p{socket_, POLLIN, 0};
    int r;
    do {
      r = ::poll(&p, 1, static_cast<int>(options_.request_timeout.count()));
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
      Kill();
      return DeadlineExceeded("python worker for model '" + options_.model_name + "' (pid " +
                              std::to_string(pid_) + ") did not answer within " +
                              std::to_string(options_.request_timeout.count()) +
                              " ms and was killed");
    }
  }
  if (t.ok()) t = ReadFrame(socket_, answer);
  if (!t.ok()) return Died(during, t);
  return Status::Ok();
}

void PythonWorker::Kill() {
  alive_ = false;
  BeginStop();
  if (pid_ > 0 && !reaped_) ::kill(pid_, SIGKILL);
  Reap(options_.stop_grace);
}

std::chrono::steady_clock::time_point PythonWorker::LoadDeadline(const WorkerOptions& options) {
  if (options.load_timeout.count() <= 0) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() + options.load_timeout;
}

StatusOr<WorkerMetadata> PythonWorker::AwaitReady(std::chrono::steady_clock::time_point deadline,
                                                  int cancel_fd) {
  if (!alive_) {
    return Internal("python worker for model '" + options_.model_name + "' is not running");
  }
  // Wait for the answer's first byte (the rest of the frame follows it at once), a cancel, or
  // the deadline: a load() that never returns must not hold the server's control thread.
  for (;;) {
    pollfd fds[2] = {{socket_, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
    int timeout_ms = -1;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, 1'000'000));
    }
    int r = ::poll(fds, cancel_fd >= 0 ? 2 : 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r > 0 && fds[0].revents != 0) break;  // an answer, or the socket closed: read it
    if (r > 0 && cancel_fd >= 0 && fds[1].revents != 0) {
      Kill();
      return Unavailable("loading python model '" + options_.model_name +
                         "' was stopped: the model is being unloaded");
    }
    if (r == 0 && std::chrono::steady_clock::now() >= deadline) {
      Kill();
      return DeadlineExceeded("python worker for model '" + options_.model_name + "' (pid " +
                              std::to_string(pid_) + ") did not finish loading within " +
                              std::to_string(options_.load_timeout.count()) +
                              " ms (parameters.load_timeout_ms) and was killed");
    }
    if (r < 0) break;  // poll itself failed: let the read report it
  }
  Frame answer;
  TransportStatus t = ReadFrame(socket_, &answer);
  if (!t.ok()) return Died("while loading the model", t);
  if (answer.kind == FrameKind::kError) {
    alive_ = false;  // a worker whose load failed serves nothing; the destructor stops it
    return ParseError(answer.header);
  }
  if (answer.kind != FrameKind::kReady) {
    return Died("while loading the model",
                {TransportError::kMalformed, "unexpected answer to the load request"});
  }
  return ParseReady(answer.header);
}

Status PythonWorker::InferV2(const InferRequest& request, InferResponse* response) {
  const size_t inputs_end = LayoutInputs(request.inputs, &placements_);
  // Some room past the inputs for small outputs; the worker grows the region for large ones.
  QUIVER_RETURN_IF_ERROR(region_.Reserve(inputs_end + 4096));
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    if (placements_[i].nbytes > 0) {
      std::memcpy(region_.data() + placements_[i].offset, request.inputs[i].data.data(),
                  placements_[i].nbytes);
    }
  }
  const std::string header = EncodeInferHeader(request, placements_, region_.size(), inputs_end);
  Frame answer;
  QUIVER_RETURN_IF_ERROR(
      Exchange(FrameKind::kInferV2, header, {}, &answer, "while running a request"));
  if (answer.kind == FrameKind::kError) return ParseError(answer.header);
  if (answer.kind != FrameKind::kResultV2) {
    return Died("while running a request",
                {TransportError::kMalformed, "unexpected answer to an inference request"});
  }
  QUIVER_ASSIGN_OR_RETURN(InferResult result, ParseInferResult(answer.header));
  QUIVER_RETURN_IF_ERROR(region_.Refresh(result.region_size));
  return CopyOutputs(result, region_.data(), region_.size(), response);
}

Status PythonWorker::CallV1(FrameKind kind, std::string_view body, const RequestHeaders* headers,
                            std::string* out) {
  Frame answer;
  QUIVER_RETURN_IF_ERROR(
      Exchange(kind, EncodeV1Header(headers), body, &answer, "while running a request"));
  if (answer.kind == FrameKind::kError) return ParseError(answer.header);
  if (answer.kind != FrameKind::kResultV1) {
    return Died("while running a request",
                {TransportError::kMalformed, "unexpected answer to a V1 request"});
  }
  *out = std::move(answer.payload);
  return Status::Ok();
}

}  // namespace quiver::python_runtime
