// Test driver for tests/integration/test_supervisor.py (not installed): supervises N replicas
// of `quiver serve --builtin-models add_sub`, prints every event as a JSON line on stdout, and
// keeps the replicas' records in a state file so that a restarted fixture adopts them, as
// `quiver up` does after kill -9. SIGTERM or SIGINT stops the replicas and exits 0.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "control/port_allocator.h"
#include "control/supervisor.h"

namespace {

using quiver::control::ReplicaEvent;
using quiver::control::ReplicaRecord;
using quiver::control::ReplicaSpec;
using quiver::control::ReplicaStateName;

std::mutex out_mu;

void Print(const nlohmann::json& line) {
  std::lock_guard lock(out_mu);
  std::cout << line.dump() << std::endl;
}

nlohmann::json RecordToJson(const ReplicaRecord& r) {
  return {{"id", r.id},
          {"pid", r.pid},
          {"start_time", r.start_time},
          {"argv_hash", r.argv_hash},
          {"http_port", r.http_port},
          {"grpc_port", r.grpc_port},
          {"log_path", r.log_path}};
}

ReplicaRecord RecordFromJson(const nlohmann::json& j) {
  ReplicaRecord r;
  r.id = j.at("id").get<std::string>();
  r.pid = j.at("pid").get<pid_t>();
  r.start_time = j.at("start_time").get<uint64_t>();
  r.argv_hash = j.at("argv_hash").get<std::string>();
  r.http_port = j.at("http_port").get<int>();
  r.grpc_port = j.at("grpc_port").get<int>();
  r.log_path = j.at("log_path").get<std::string>();
  return r;
}

// The caller's store, here a JSON file replaced atomically on every change.
class StateFile {
 public:
  explicit StateFile(std::string path) : path_(std::move(path)) {}

  std::map<std::string, ReplicaRecord> Load() {
    std::map<std::string, ReplicaRecord> records;
    std::ifstream in(path_);
    if (!in) return records;
    nlohmann::json j = nlohmann::json::parse(in);
    for (const auto& r : j.at("replicas")) {
      ReplicaRecord record = RecordFromJson(r);
      records[record.id] = record;
    }
    std::lock_guard lock(mu_);
    records_ = records;
    return records;
  }

  void Put(const ReplicaRecord& record) {
    std::lock_guard lock(mu_);
    records_[record.id] = record;
    Save();
  }

  void Erase(const std::string& id) {
    std::lock_guard lock(mu_);
    records_.erase(id);
    Save();
  }

 private:
  void Save() {
    nlohmann::json j = {{"replicas", nlohmann::json::array()}};
    for (const auto& [id, r] : records_) j["replicas"].push_back(RecordToJson(r));
    const std::string temp = path_ + ".tmp";
    {
      std::ofstream out(temp, std::ios::trunc);
      out << j.dump(2) << "\n";
    }
    std::filesystem::rename(temp, path_);
  }

  std::string path_;
  std::mutex mu_;
  std::map<std::string, ReplicaRecord> records_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"supervisor_fixture: supervises quiver serve replicas for integration tests"};
  std::string quiver_bin, state_path, log_dir;
  int replicas = 2;
  int backoff_ms = 200;
  double grace_s = 10;
  app.add_option("--quiver", quiver_bin, "Path of the quiver binary")->required();
  app.add_option("--replicas", replicas, "Number of replicas")->check(CLI::Range(1, 16));
  app.add_option("--state", state_path, "State file (JSON)")->required();
  app.add_option("--log-dir", log_dir, "Directory for replica logs")->required();
  app.add_option("--backoff-ms", backoff_ms, "Initial restart backoff")->check(CLI::PositiveNumber);
  app.add_option("--grace", grace_s, "Stop grace period in seconds");
  CLI11_PARSE(app, argc, argv);
  // stdout carries only the JSON event lines; the supervisor's own log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_color_mt("supervisor_fixture"));

  // Blocked before any thread starts so every thread inherits the mask and only sigwait below
  // sees them (replicas get a clean mask from the supervisor).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  StateFile state(state_path);
  std::map<std::string, ReplicaRecord> records;
  try {
    records = state.Load();
  } catch (const std::exception& e) {
    std::cerr << "state file " << state_path << ": " << e.what() << "\n";
    return 2;
  }

  quiver::control::Supervisor::Options options;
  options.on_event = [&state](const ReplicaEvent& e) {
    nlohmann::json line = {{"event", "state"},
                           {"id", e.id},
                           {"state", ReplicaStateName(e.state)},
                           {"reason", e.reason},
                           {"pid", e.status.pid},
                           {"adopted", e.status.adopted},
                           {"restart_count", e.status.restart_count},
                           {"http_port", e.status.http_port}};
    if (e.status.last_failure) {
      line["last_failure"] = {{"reason", e.status.last_failure->reason},
                              {"log_tail", e.status.last_failure->log_tail},
                              {"pid", e.status.last_failure->pid}};
    }
    Print(line);
    if (e.status.pid != 0) {
      state.Put(e.status.Record());
    } else if (e.state == quiver::control::ReplicaState::kStopped) {
      state.Erase(e.id);
    }
  };
  auto supervisor = quiver::control::Supervisor::Create(options);
  if (!supervisor.ok()) {
    std::cerr << supervisor.status().ToString() << "\n";
    return 1;
  }

  quiver::control::PortAllocator ports;
  for (const auto& [id, record] : records) {
    (void)ports.Reserve(record.http_port);
    (void)ports.Reserve(record.grpc_port);
  }
  for (int i = 0; i < replicas; ++i) {
    const std::string id = "r" + std::to_string(i);
    auto found = records.find(id);
    int http_port = 0, grpc_port = 0;
    if (found != records.end()) {
      http_port = found->second.http_port;
      grpc_port = found->second.grpc_port;
    } else {
      auto h = ports.Allocate();
      auto g = ports.Allocate();
      if (!h.ok() || !g.ok()) {
        std::cerr << "cannot allocate ports\n";
        return 1;
      }
      http_port = *h;
      grpc_port = *g;
    }
    ReplicaSpec spec;
    spec.id = id;
    spec.process.argv = {quiver_bin,         "serve",
                         "--builtin-models", "add_sub",
                         "--host",           "127.0.0.1",
                         "--http-port",      std::to_string(http_port),
                         "--grpc-port",      std::to_string(grpc_port)};
    spec.process.env = {"PATH=/usr/bin:/bin"};
    spec.process.log_path = log_dir + "/" + id + ".log";
    spec.http_port = http_port;
    spec.grpc_port = grpc_port;
    spec.lifecycle.probe_period = std::chrono::milliseconds(200);
    spec.lifecycle.start_timeout = std::chrono::seconds(30);
    spec.lifecycle.backoff.initial = std::chrono::milliseconds(backoff_ms);
    spec.stop_grace = std::chrono::duration_cast<quiver::control::Duration>(
        std::chrono::duration<double>(grace_s));
    if (found != records.end()) {
      quiver::Status adopted = (*supervisor)->Adopt(spec, found->second);
      if (adopted.ok()) {
        Print({{"event", "adopted"}, {"id", id}, {"pid", found->second.pid}});
        continue;
      }
      Print({{"event", "adopt_failed"}, {"id", id}, {"reason", adopted.message()}});
    }
    quiver::Status started = (*supervisor)->Start(spec);
    if (!started.ok()) {
      std::cerr << started.ToString() << "\n";
      return 1;
    }
  }

  int sig = 0;
  sigwait(&signals, &sig);
  Print({{"event", "stopping"}, {"signal", sig}});
  quiver::Status stopped = (*supervisor)->StopAllAndWait(std::nullopt, std::chrono::seconds(60));
  Print({{"event", "exit"}, {"ok", stopped.ok()}, {"message", stopped.message()}});
  return stopped.ok() ? 0 : 1;
}
