// WorkerPool: the Python worker processes of one model (one per instance) and the queue that
// hands a free one to each request. A worker that dies is replaced in the background by a
// maintenance thread, which also notices workers that die while idle (checked every second).
// Thread-safe: Run may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtimes/python/worker_process.h"

namespace quiver::python_runtime {

class WorkerPool {
 public:
  // Starts `count` workers at once and waits until each has loaded the model, for at most
  // options.load_timeout (they load in parallel, so one deadline covers all). Fails with the
  // first worker's error (its Python exception, naming the file, how it died, or the timeout);
  // no worker is left running then. `metadata` receives what the model declared.
  static StatusOr<std::unique_ptr<WorkerPool>> Create(WorkerOptions options, int count,
                                                      WorkerMetadata* metadata);
  // Stops every worker (they exit when their socket closes; SIGKILL after the grace period).
  // A replacement still loading is killed at once. Call only when no Run is in progress.
  ~WorkerPool();

  // Runs `call` on a free live worker, waiting for one to be free. A worker that died during
  // the call is replaced before it serves again; the call's own status (saying how the worker
  // died) is returned. kUnavailable when every worker is down and the last attempt to start one
  // failed (the message gives that failure); the next call tries again.
  Status Run(const std::function<Status(PythonWorker&)>& call);

  // The live workers' process ids, for logs and tests.
  std::vector<pid_t> pids() const;

 private:
  WorkerPool(WorkerOptions options, std::vector<std::unique_ptr<PythonWorker>> workers);
  void MaintenanceLoop();
  // Whether the destructor has signalled stop_fd_ (a non-blocking check, no lock).
  bool StopSignalled() const;

  const WorkerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  // Slots: a worker is either free (in free_), lent to one Run call, or dead (in dead_), waiting
  // for the maintenance thread. Guarded by mu_, except that the worker a Run call holds is used
  // by that call alone.
  std::vector<std::unique_ptr<PythonWorker>> workers_;
  std::vector<size_t> free_;
  std::vector<size_t> dead_;
  size_t lent_ = 0;            // guarded by mu_: workers held by Run calls or an idle check
  size_t restarting_ = 0;      // guarded by mu_: replacements being started
  Status last_restart_error_;  // guarded by mu_; OK after a successful restart
  bool stopping_ = false;      // guarded by mu_
  // An eventfd the destructor signals, so a replacement's load (AwaitReady) stops waiting.
  int stop_fd_ = -1;
  std::thread maintenance_;
};

}  // namespace quiver::python_runtime
