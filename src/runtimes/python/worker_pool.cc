#include "runtimes/python/worker_pool.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

namespace quiver::python_runtime {
namespace {

using Clock = std::chrono::steady_clock;

// Between failed attempts to start a replacement worker (a model file deleted meanwhile, a
// machine out of memory): a crash loop must not occupy a core.
constexpr auto kFirstRetryDelay = std::chrono::milliseconds(500);
constexpr auto kMaxRetryDelay = std::chrono::seconds(30);
// How often idle workers are checked, so one killed while idle is replaced before it is needed.
constexpr auto kIdleCheckPeriod = std::chrono::seconds(1);

}  // namespace

WorkerPool::WorkerPool(WorkerOptions options, std::vector<std::unique_ptr<PythonWorker>> workers)
    : options_(std::move(options)),
      workers_(std::move(workers)),
      stop_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // Without the eventfd (out of descriptors), an unload waits for a loading replacement up to
  // the load timeout instead.
  for (size_t i = 0; i < workers_.size(); ++i) free_.push_back(i);
  maintenance_ = std::thread([this] { MaintenanceLoop(); });
}

StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(WorkerOptions options, int count,
                                                         WorkerMetadata* metadata) {
  std::vector<std::unique_ptr<PythonWorker>> workers;
  // Stops every started worker at once (each exits when its socket closes) before reaping them
  // one by one, so a failed load does not wait for each in turn.
  auto stop_all = [&workers] {
    for (auto& w : workers) w->BeginStop();
    workers.clear();
  };
  // All start at once: each loads the model in its own process, in parallel.
  for (int i = 0; i < count; ++i) {
    auto worker = PythonWorker::Start(options);
    if (!worker.ok()) {
      stop_all();
      return worker.status();
    }
    workers.push_back(std::move(*worker));
  }
  Status failure;
  const auto deadline = PythonWorker::LoadDeadline(options);
  for (auto& w : workers) {
    StatusOr<WorkerMetadata> ready = w->AwaitReady(deadline);
    if (!ready.ok()) {
      failure = ready.status();
      break;
    }
    if (metadata != nullptr && &w == &workers.front()) *metadata = std::move(*ready);
  }
  if (!failure.ok()) {
    stop_all();
    return failure;
  }
  return std::unique_ptr<WorkerPool>(new WorkerPool(std::move(options), std::move(workers)));
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (stop_fd_ >= 0) {
    const uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof(one));
  }
  maintenance_.join();
  if (stop_fd_ >= 0) ::close(stop_fd_);
  for (auto& w : workers_) {
    if (w) w->BeginStop();
  }
  workers_.clear();
}

Status WorkerPool::Run(const std::function<Status(PythonWorker&)>& call) {
  for (;;) {
    size_t slot = 0;
    PythonWorker* worker = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [this] {
        return !free_.empty() || (lent_ == 0 && restarting_ == 0 && !last_restart_error_.ok());
      });
      if (free_.empty()) {
        return Unavailable("no python worker is running for model '" + options_.model_name +
                           "': starting a new one failed: " + last_restart_error_.message());
      }
      slot = free_.back();
      free_.pop_back();
      ++lent_;
      worker = workers_[slot].get();
    }
    // A worker that died while idle since the last check goes to the maintenance thread, and
    // the request waits for another.
    const bool idle_death = !worker->Probe();
    if (idle_death) {
      spdlog::warn("python worker for model '{}' (pid {}) died while idle; starting a new one",
                   options_.model_name, worker->pid());
    }
    Status status = idle_death ? Status::Ok() : call(*worker);
    const bool died = !worker->alive();
    {
      std::lock_guard<std::mutex> lock(mu_);
      --lent_;
      (died ? dead_ : free_).push_back(slot);
    }
    changed_.notify_all();
    if (idle_death) continue;
    if (died) {
      spdlog::error("{}; starting a new worker", status.message());
      return Status(status.code(), status.message() + "; a new worker is starting");
    }
    return status;
  }
}

void WorkerPool::MaintenanceLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto retry_delay = std::chrono::duration_cast<Clock::duration>(kFirstRetryDelay);
  Clock::time_point retry_at = Clock::now();
  Clock::time_point next_idle_check = Clock::now() + kIdleCheckPeriod;
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    if (!dead_.empty() && now >= retry_at) {
      // Every dead slot at once: the replacements load in parallel, like the first workers.
      std::vector<size_t> slots;
      slots.swap(dead_);
      restarting_ += slots.size();
      std::vector<std::unique_ptr<PythonWorker>> old;
      for (size_t slot : slots) old.push_back(std::move(workers_[slot]));
      lock.unlock();
      old.clear();  // already reaped when their deaths were noticed; this frees their regions
      std::vector<StatusOr<std::unique_ptr<PythonWorker>>> started;
      for (size_t i = 0; i < slots.size(); ++i) started.push_back(PythonWorker::Start(options_));
      const auto deadline = PythonWorker::LoadDeadline(options_);
      for (auto& worker : started) {
        if (!worker.ok()) continue;
        if (Status ready = (*worker)->AwaitReady(deadline, stop_fd_).status(); !ready.ok()) {
          worker = ready;
        }
      }
      Status failure;
      for (auto& worker : started) {
        if (worker.ok()) {
          spdlog::info("python worker for model '{}' replaced (pid {})", options_.model_name,
                       (*worker)->pid());
        } else {
          failure = worker.status();
          if (!StopSignalled()) {  // else the pool stopped the load itself: no failure to report
            spdlog::error("starting a python worker for model '{}' failed: {}", options_.model_name,
                          failure.message());
          }
        }
      }
      lock.lock();
      restarting_ -= slots.size();
      for (size_t i = 0; i < slots.size(); ++i) {
        if (started[i].ok()) {
          workers_[slots[i]] = std::move(*started[i]);
          free_.push_back(slots[i]);
        } else {
          dead_.push_back(slots[i]);
        }
      }
      if (failure.ok()) {
        last_restart_error_ = Status::Ok();
        retry_delay = std::chrono::duration_cast<Clock::duration>(kFirstRetryDelay);
      } else {
        last_restart_error_ = failure;
        retry_at = Clock::now() + retry_delay;
        retry_delay = std::min<Clock::duration>(retry_delay * 2, kMaxRetryDelay);
      }
      changed_.notify_all();
      continue;
    }
    if (now >= next_idle_check) {
      next_idle_check = now + kIdleCheckPeriod;
      // The idle workers are taken out of free_ while they are checked, so the check (a poll,
      // and a reap when one died) runs without the lock.
      std::vector<size_t> idle;
      idle.swap(free_);
      lent_ += idle.size();
      lock.unlock();
      std::vector<size_t> live, died;
      for (size_t slot : idle) {
        if (workers_[slot]->Probe()) {
          live.push_back(slot);
        } else {
          spdlog::warn("python worker for model '{}' (pid {}) died while idle; starting a new one",
                       options_.model_name, workers_[slot]->pid());
          died.push_back(slot);
        }
      }
      lock.lock();
      lent_ -= idle.size();
      free_.insert(free_.end(), live.begin(), live.end());
      dead_.insert(dead_.end(), died.begin(), died.end());
      changed_.notify_all();
      continue;
    }
    Clock::time_point wake = next_idle_check;
    if (!dead_.empty()) wake = std::min(wake, retry_at);
    changed_.wait_until(lock, wake);
  }
}

bool WorkerPool::StopSignalled() const {
  if (stop_fd_ < 0) return false;
  pollfd p{stop_fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

std::vector<pid_t> WorkerPool::pids() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<pid_t> out;
  for (const auto& w : workers_) {
    if (w) out.push_back(w->pid());
  }
  return out;
}

}  // namespace quiver::python_runtime
