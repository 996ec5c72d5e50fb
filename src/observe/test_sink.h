// TestSink: a real local HTTP endpoint for the telemetry tests (quiver's own HttpServer on
// 127.0.0.1, port 0, in a thread). It records every request and answers with the statuses it
// is told to, or holds answers back until released (a stuck sink). Thread-safe.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"

namespace quiver::observe {

class TestSink {
 public:
  struct Received {
    std::string target;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
  };

  TestSink() {
    http::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    options.drain_timeout = std::chrono::milliseconds(200);
    auto server = http::HttpServer::Create(
        options, [this](http::Request&& r, http::Responder w) { Handle(std::move(r), std::move(w)); });
    server_ = std::move(server).value();
    thread_ = std::thread([this] { server_->Run(); });
  }

  ~TestSink() {
    Release();
    server_->Shutdown();
    thread_.join();
  }

  std::string url(std::string_view path = "/sink") const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + std::string(path);
  }

  // Statuses for the next requests, in order; afterwards 200.
  void AnswerWith(std::vector<int> statuses) {
    std::lock_guard<std::mutex> lock(mu_);
    statuses_.assign(statuses.begin(), statuses.end());
  }

  // While held, requests are recorded but not answered.
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    std::vector<http::Responder> held;
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
      held.swap(held_);
    }
    for (auto& r : held) r.Send(http::Response{.status = 200, .body = "{}"});
  }

  // Waits up to `timeout` for at least `n` requests; returns what has arrived.
  std::vector<Received> WaitFor(size_t n, std::chrono::milliseconds timeout =
                                              std::chrono::milliseconds(5000)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
    return received_;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_.size();
  }

 private:
  void Handle(http::Request&& r, http::Responder w) {
    Received rec;
    rec.target = std::string(r.target());
    for (const auto& field : r.message) {
      auto n = field.name_string();
      auto v = field.value();
      std::string name(n.data(), n.size());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      rec.headers[name] = std::string(v.data(), v.size());
    }
    rec.body = std::move(r.body());
    int status = 200;
    {
      std::lock_guard<std::mutex> lock(mu_);
      received_.push_back(std::move(rec));
      if (!statuses_.empty()) {
        status = statuses_.front();
        statuses_.pop_front();
      }
      if (hold_) {
        held_.push_back(std::move(w));
        cv_.notify_all();
        return;
      }
    }
    cv_.notify_all();
    w.Send(http::Response{.status = status, .body = "{}"});
  }

  std::unique_ptr<http::HttpServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Received> received_;    // guarded by mu_
  std::deque<int> statuses_;          // guarded by mu_
  bool hold_ = false;                 // guarded by mu_
  std::vector<http::Responder> held_; // guarded by mu_
};

}  // namespace quiver::observe
