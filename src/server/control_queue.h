// ControlQueue: one thread that runs slow control work (model load and unload) in order, so
// I/O threads never wait on it. Thread-safe. Destruction runs what is queued, then joins.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace quiver {

class ControlQueue {
 public:
  ControlQueue();
  ~ControlQueue();
  void Post(std::function<void()> task);

 private:
  void Loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  std::thread thread_;
};

}  // namespace quiver
