// PythonWorker: one `quiver-python-worker` child process that embeds CPython and serves one
// model, reached through a socketpair and a shared memory region (worker_protocol.h).
// Not thread-safe: the pool hands a worker to one thread at a time. The destructor stops the
// process (closing its socket makes it exit; SIGKILL after a grace period) and reaps it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "runtimes/python/worker_protocol.h"

namespace quiver::python_runtime {

struct WorkerOptions {
  std::string model_name;
  std::filesystem::path executable;   // quiver-python-worker
  std::filesystem::path python_lib;   // the folder holding quiver_model/ and kserve/
  std::filesystem::path working_dir;  // the model's folder; empty: the server's
  // Added to (or replacing entries of) the server's environment, as "NAME=value".
  std::vector<std::string> environment;
  std::string load_header;  // the kLoad frame's header (EncodeLoadHeader)
  size_t initial_region_bytes = size_t{1} << 20;
  // How long a worker that was asked to stop may take before it is killed.
  std::chrono::milliseconds stop_grace{2000};
  // A request not answered within this is failed and its worker killed (and replaced); zero
  // waits forever. Not applied to loading.
  std::chrono::milliseconds request_timeout{0};
  // A worker that has not loaded the model within this is killed and its load fails (first
  // workers and replacements alike); zero waits forever.
  std::chrono::milliseconds load_timeout{120'000};
};

class PythonWorker {
 public:
  // Starts the process (posix_spawn; it gets the socket as fd 3 and the region as fd 4, its own
  // process group, default signal dispositions and an empty signal mask) and sends it kLoad.
  // Does not wait for the load: call AwaitReady. kInternal when the process cannot start.
  static StatusOr<std::unique_ptr<PythonWorker>> Start(const WorkerOptions& options);
  ~PythonWorker();
  PythonWorker(const PythonWorker&) = delete;
  PythonWorker& operator=(const PythonWorker&) = delete;

  // Waits for the answer to kLoad until `deadline`. On failure the message is the Python error
  // (naming the file), or how the process died, or kDeadlineExceeded naming
  // parameters.load_timeout_ms when the deadline passed (the process is then killed). When
  // `cancel_fd` (an eventfd or pipe) becomes readable the wait stops at once with kUnavailable
  // and the process is killed. The worker is dead after any failure.
  StatusOr<WorkerMetadata> AwaitReady(std::chrono::steady_clock::time_point deadline,
                                      int cancel_fd = -1);
  // The deadline for a load starting now: now + load_timeout, or time_point::max() without one.
  static std::chrono::steady_clock::time_point LoadDeadline(const WorkerOptions& options);

  // One V2 inference: inputs are copied into the region, outputs copied out of it.
  // Errors: the model's own (kInvalidArgument, kInternal, ... as it raised them; the worker stays
  // alive), or kInternal "python worker for model 'm' (pid N) died (signal 9: Killed) ..." when
  // the process is gone, or kDeadlineExceeded when it did not answer within request_timeout and
  // was killed (alive() is false after these two).
  Status InferV2(const InferRequest& request, InferResponse* response);
  // A V1 :predict or :explain with the raw JSON body (and the request's headers, or null);
  // `answer` receives the response body.
  Status CallV1(FrameKind kind, std::string_view body, const RequestHeaders* headers,
                std::string* answer);

  // False once the process is known to be gone. Probe() also notices a process that died while
  // idle (its end of the socket closed) without blocking.
  bool alive() const { return alive_; }
  bool Probe();
  pid_t pid() const { return pid_; }

  // Asks the process to exit (closes its socket) without waiting; the destructor then reaps it.
  // Lets a pool stop all its workers at once.
  void BeginStop();

 private:
  PythonWorker(const WorkerOptions& options, SharedRegion region);

  // Sends one request frame and reads the answer; on a transport failure marks the worker dead
  // and returns the kInternal status that says how it died, with `during` for context.
  Status Exchange(FrameKind kind, std::string_view header, std::string_view payload, Frame* answer,
                  std::string_view during);
  Status Died(std::string_view during, const TransportStatus& transport);
  // Kills the process now and reaps it; the worker is dead.
  void Kill();
  // Reaps the process, killing it after `grace`; returns how it ended ("signal 9: Killed",
  // "exit status 1").
  std::string Reap(std::chrono::milliseconds grace);

  const WorkerOptions options_;
  SharedRegion region_;
  int socket_ = -1;
  pid_t pid_ = -1;
  bool alive_ = true;
  bool reaped_ = false;
  std::vector<Placement> placements_;  // reused between requests
};

}  // namespace quiver::python_runtime
