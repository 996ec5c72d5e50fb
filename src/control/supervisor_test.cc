#include "control/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "control/port_allocator.h"

namespace quiver::control {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A tiny health server: /v2/health/ready answers 200, or 503 while the file named by the second
// argument exists.
constexpr const char* kHealthServer = R"PY(
import http.server, os, sys
port = int(sys.argv[1])
flag = sys.argv[2] if len(sys.argv) > 2 else ""
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/v2/health/ready" and not (flag and os.path.exists(flag))
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
print("health server on", port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
)PY";

// Collects events and lets a test wait for one.
class EventLog {
 public:
  void Add(const ReplicaEvent& e) {
    std::lock_guard lock(mu_);
    events_.push_back(e);
    cv_.notify_all();
  }

  // The first event at or after position `from` for `id` in `state`; fails the test on timeout.
  std::optional<ReplicaEvent> WaitFor(const std::string& id, ReplicaState state,
                                      size_t* from = nullptr, Duration timeout = seconds(20)) {
    std::unique_lock lock(mu_);
    size_t start = from ? *from : 0;
    std::optional<ReplicaEvent> found;
    cv_.wait_for(lock, timeout, [&] {
      for (size_t i = start; i < events_.size(); ++i) {
        if (events_[i].id == id && events_[i].state == state) {
          found = events_[i];
          if (from) *from = i + 1;
          return true;
        }
      }
      return false;
    });
    if (!found) {
      std::string seen;
      for (const auto& e : events_) {
        seen += e.id + ":" + std::string(ReplicaStateName(e.state)) + "(" + e.reason + ") ";
      }
      ADD_FAILURE() << "no " << ReplicaStateName(state) << " event for " << id
                    << "; events: " << seen;
    }
    return found;
  }

  size_t size() {
    std::lock_guard lock(mu_);
    return events_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ReplicaEvent> events_;
};

bool Alive(pid_t pid) {
  auto stat = ReadProcStat(pid);
  return stat.ok() && stat->state != 'Z';
}

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quiver_supervisor_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "health.py") << kHealthServer;
    supervisor_ = MakeSupervisor(events_);
  }

  void TearDown() override {
    if (supervisor_) (void)supervisor_->StopAllAndWait(milliseconds(100), seconds(10));
    supervisor_.reset();
    fs::remove_all(dir_);
  }

  std::unique_ptr<Supervisor> MakeSupervisor(EventLog& log) {
    Supervisor::Options options;
    options.on_event = [&log](const ReplicaEvent& e) { log.Add(e); };
    options.log_check_interval = milliseconds(50);
    auto s = Supervisor::Create(options);
    EXPECT_TRUE(s.ok());
    return std::move(*s);
  }

  // A spec with fast probes and backoff so the tests run in well under a second each.
  ReplicaSpec Spec(const std::string& id, std::vector<std::string> argv) {
    ReplicaSpec spec;
    spec.id = id;
    spec.process.argv = std::move(argv);
    spec.process.log_path = (dir_ / (id + ".log")).string();
    auto port = ports_.Allocate();
    EXPECT_TRUE(port.ok());
    spec.http_port = *port;
    spec.lifecycle.probe_initial_interval = milliseconds(20);
    spec.lifecycle.probe_period = milliseconds(50);
    spec.lifecycle.start_timeout = seconds(15);
    spec.lifecycle.backoff.initial = milliseconds(200);
    spec.stop_grace = seconds(5);
    return spec;
  }

  ReplicaSpec HealthServer(const std::string& id, const std::string& flag = "") {
    ReplicaSpec spec = Spec(id, {});
    spec.process.argv = {"/usr/bin/python3", (dir_ / "health.py").string(),
                         std::to_string(spec.http_port)};
    if (!flag.empty()) spec.process.argv.push_back(flag);
    return spec;
  }

  ReplicaSpec Shell(const std::string& id, const std::string& script) {
    ReplicaSpec spec = Spec(id, {"/bin/sh", "-c", script});
    // These children do not serve HTTP; "ready" is a TCP connect that never succeeds.
    spec.readiness.kind = ProbeTarget::Kind::kTcpConnect;
    return spec;
  }

  std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
  PortAllocator ports_;
  EventLog events_;
  std::unique_ptr<Supervisor> supervisor_;
};

TEST_F(SupervisorTest, StartsProbesAndStopsARealServer) {
  const ReplicaSpec spec = HealthServer("web");
  ASSERT_TRUE(supervisor_->Start(spec).ok());
  size_t pos = 0;
  auto starting = events_.WaitFor("web", ReplicaState::kStarting, &pos);
  ASSERT_TRUE(starting);
  EXPECT_EQ(starting->reason, "process started");
  auto ready = events_.WaitFor("web", ReplicaState::kReady, &pos);
  ASSERT_TRUE(ready);
  const pid_t pid = ready->status.pid;
  EXPECT_GT(pid, 0);
  EXPECT_TRUE(Alive(pid));
  const ReplicaRecord record = ready->status.Record();
  EXPECT_EQ(record.pid, pid);
  EXPECT_EQ(record.argv_hash, ArgvHash(spec.process.argv));
  EXPECT_EQ(record.http_port, spec.http_port);
  EXPECT_EQ(record.start_time, ReadProcStat(pid)->start_time);
  auto status = supervisor_->GetStatus("web");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->state, ReplicaState::kReady);
  EXPECT_EQ(status->restart_count, 0);

  ASSERT_TRUE(supervisor_->Stop("web").ok());
  ASSERT_TRUE(events_.WaitFor("web", ReplicaState::kDraining, &pos));
  auto stopped = events_.WaitFor("web", ReplicaState::kStopped, &pos);
  ASSERT_TRUE(stopped);
  // Python's default SIGTERM disposition ends it at once.
  EXPECT_EQ(stopped->reason, "stopped: killed by signal 15 (Terminated)");
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(supervisor_->GetStatus("web").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(stopped->status.last_failure) << "a requested stop is not a failure";
}

TEST_F(SupervisorTest, CrashIsRestartedWithGrowingBackoffAndReported) {
  ReplicaSpec spec = Shell("crash", "echo booting; echo fatal: no model >&2; exit 7");
  spec.log_tail_lines = 2;
  ASSERT_TRUE(supervisor_->Start(spec).ok());
  size_t pos = 0;
  std::vector<TimePoint> failed_at, started_at;
  for (int i = 0; i < 3; ++i) {
    auto started = events_.WaitFor("crash", ReplicaState::kStarting, &pos);
    ASSERT_TRUE(started);
    started_at.push_back(SteadyClock::now());
    EXPECT_EQ(started->status.restart_count, i);
    auto failed = events_.WaitFor("crash", ReplicaState::kFailed, &pos);
    ASSERT_TRUE(failed);
    failed_at.push_back(SteadyClock::now());
    ASSERT_TRUE(failed->status.last_failure);
    EXPECT_EQ(failed->status.last_failure->reason, "exited with code 7");
    EXPECT_EQ(failed->status.last_failure->log_tail, "booting\nfatal: no model");
    const std::string delay = i == 0 ? "200ms" : i == 1 ? "400ms" : "800ms";
    EXPECT_EQ(failed->reason, "exited with code 7; restarting in " + delay);
  }
  // The waits between a failure and the next start grow: 200 ms, then 400 ms.
  EXPECT_GE(started_at[1] - failed_at[0], milliseconds(150));
  EXPECT_GE(started_at[2] - failed_at[1], milliseconds(350));
}

TEST_F(SupervisorTest, SigtermIgnoredEscalatesToSigkillOfTheGroup) {
  ReplicaSpec spec = Shell("stubborn", "trap '' TERM; sleep 100 & echo $! > " +
                                           (dir_ / "child.pid").string() + "; wait; sleep 100");
  ASSERT_TRUE(supervisor_->Start(spec).ok());
  size_t pos = 0;
  auto started = events_.WaitFor("stubborn", ReplicaState::kStarting, &pos);
  ASSERT_TRUE(started);
  // Wait until the grandchild exists.
  for (int i = 0; i < 200 && Read(dir_ / "child.pid").empty(); ++i) usleep(10 * 1000);
  const pid_t grandchild = std::stoi(Read(dir_ / "child.pid"));
  ASSERT_TRUE(Alive(grandchild));

  const auto begin = SteadyClock::now();
  ASSERT_TRUE(supervisor_->Stop("stubborn", milliseconds(300)).ok());
  auto draining = events_.WaitFor("stubborn", ReplicaState::kDraining, &pos);
  ASSERT_TRUE(draining);
  EXPECT_EQ(draining->reason, "stop requested: SIGTERM sent, grace period 300ms");
  auto stopped = events_.WaitFor("stubborn", ReplicaState::kStopped, &pos);
  ASSERT_TRUE(stopped);
  EXPECT_GE(SteadyClock::now() - begin, milliseconds(300));
  EXPECT_EQ(stopped->reason, "stopped: killed by signal 9 (Killed)");
  // The process group went with it: nothing keeps the replica's ports or files.
  for (int i = 0; i < 100 && Alive(grandchild); ++i) usleep(10 * 1000);
  EXPECT_FALSE(Alive(grandchild));
}

TEST_F(SupervisorTest, GracefulExitOnSigtermEndsTheDrainEarly) {
  ASSERT_TRUE(supervisor_
                  ->Start(Shell("polite",
                                "trap 'echo draining; exit 0' TERM; "
                                "while :; do sleep 0.05; done"))
                  .ok());
  size_t pos = 0;
  ASSERT_TRUE(events_.WaitFor("polite", ReplicaState::kStarting, &pos));
  usleep(100 * 1000);  // let the shell install its trap
  const auto begin = SteadyClock::now();
  ASSERT_TRUE(supervisor_->Stop("polite", seconds(10)).ok());
  auto stopped = events_.WaitFor("polite", ReplicaState::kStopped, &pos);
  ASSERT_TRUE(stopped);
  EXPECT_EQ(stopped->reason, "stopped: exited with code 0");
  EXPECT_LT(SteadyClock::now() - begin, seconds(5));
  EXPECT_NE(Read(dir_ / "polite.log").find("draining"), std::string::npos);
}

TEST_F(SupervisorTest, AdoptsAReplicaOfAPreviousSupervisor) {
  const ReplicaSpec spec = HealthServer("web");
  ReplicaRecord record;
  {
    EventLog first_events;
    auto first = MakeSupervisor(first_events);
    ASSERT_TRUE(first->Start(spec).ok());
    auto ready = first_events.WaitFor("web", ReplicaState::kReady);
    ASSERT_TRUE(ready);
    record = ready->status.Record();
    // The daemon dies: the supervisor goes away, the replica stays.
  }
  ASSERT_TRUE(Alive(record.pid));

  ASSERT_TRUE(supervisor_->Adopt(spec, record).ok());
  size_t pos = 0;
  auto adopted = events_.WaitFor("web", ReplicaState::kStarting, &pos);
  ASSERT_TRUE(adopted);
  EXPECT_EQ(adopted->reason, "adopted running process");
  EXPECT_TRUE(adopted->status.adopted);
  auto ready = events_.WaitFor("web", ReplicaState::kReady, &pos);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status.pid, record.pid) << "adopted, not restarted";
  EXPECT_EQ(ready->status.restart_count, 0);

  // Exit detection and restart work for the adopted process.
  ::kill(record.pid, SIGKILL);
  ASSERT_TRUE(events_.WaitFor("web", ReplicaState::kFailed, &pos));
  auto restarted = events_.WaitFor("web", ReplicaState::kReady, &pos);
  ASSERT_TRUE(restarted);
  EXPECT_NE(restarted->status.pid, record.pid);
  EXPECT_FALSE(restarted->status.adopted);
  EXPECT_EQ(restarted->status.restart_count, 1);
}

TEST_F(SupervisorTest, AdoptsAProcessThatIsNotItsChild) {
  // The health server is started by a shell that exits at once, so its parent becomes init
  // (or a subreaper), as after the daemon was killed.
  ReplicaSpec spec = HealthServer("orphan");
  std::string command;
  for (const auto& a : spec.process.argv) command += "'" + a + "' ";
  const std::string pid_file = (dir_ / "orphan.pid").string();
  ASSERT_EQ(std::system(("(" + command + ">/dev/null 2>&1 & echo $! > " + pid_file + ")").c_str()),
            0);
  const pid_t pid = std::stoi(Read(pid_file));
  auto stat = ReadProcStat(pid);
  ASSERT_TRUE(stat.ok());
  ReplicaRecord record{"orphan",       pid, stat->start_time,     ArgvHash(spec.process.argv),
                       spec.http_port, 0,   spec.process.log_path};

  // A wrong start time means the pid was reused: not adopted.
  ReplicaRecord reused = record;
  reused.start_time += 1;
  Status refused = supervisor_->Adopt(spec, reused);
  EXPECT_EQ(refused.code(), StatusCode::kNotFound);
  EXPECT_NE(refused.message().find("now belongs to another process"), std::string::npos);
  EXPECT_TRUE(Alive(pid));

  ASSERT_TRUE(supervisor_->Adopt(spec, record).ok());
  size_t pos = 0;
  auto ready = events_.WaitFor("orphan", ReplicaState::kReady, &pos);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status.pid, pid);
  ::kill(pid, SIGKILL);
  auto failed = events_.WaitFor("orphan", ReplicaState::kFailed, &pos);
  ASSERT_TRUE(failed);
  ASSERT_TRUE(failed->status.last_failure);
  EXPECT_EQ(failed->status.last_failure->reason, "exited (exit status unknown: adopted process)");
  EXPECT_EQ(failed->status.last_failure->pid, pid);
  auto again = events_.WaitFor("orphan", ReplicaState::kReady, &pos);
  ASSERT_TRUE(again);
  EXPECT_NE(again->status.pid, pid);
}

TEST_F(SupervisorTest, AdoptRefusesGoneProcessesAndKillsChangedOnes) {
  ReplicaSpec spec = HealthServer("web");
  ReplicaRecord gone{"web", 1 << 23, 1, ArgvHash(spec.process.argv), spec.http_port, 0, ""};
  Status s = supervisor_->Adopt(spec, gone);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("is gone"), std::string::npos) << s.message();

  // A process from an older spec is stopped so a fresh one can take its ports.
  EventLog other_events;
  ReplicaRecord old_record;
  {
    auto other = MakeSupervisor(other_events);
    ReplicaSpec old_spec = spec;
    old_spec.process.argv.push_back((dir_ / "unused-flag").string());
    ASSERT_TRUE(other->Start(old_spec).ok());
    auto ready = other_events.WaitFor("web", ReplicaState::kReady);
    ASSERT_TRUE(ready);
    old_record = ready->status.Record();
  }
  s = supervisor_->Adopt(spec, old_record);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("different command line"), std::string::npos) << s.message();
  for (int i = 0; i < 200 && Alive(old_record.pid); ++i) usleep(10 * 1000);
  EXPECT_FALSE(Alive(old_record.pid));
  // Nothing was registered: a fresh start with the same id works.
  EXPECT_TRUE(supervisor_->Start(spec).ok());
  EXPECT_TRUE(events_.WaitFor("web", ReplicaState::kReady));
}

TEST_F(SupervisorTest, ReadyBecomesUnreadyWhenProbesFailAndRecovers) {
  const std::string flag = (dir_ / "unhealthy").string();
  ReplicaSpec spec = HealthServer("flaky", flag);
  spec.lifecycle.failure_threshold = 2;
  ASSERT_TRUE(supervisor_->Start(spec).ok());
  size_t pos = 0;
  ASSERT_TRUE(events_.WaitFor("flaky", ReplicaState::kReady, &pos));
  std::ofstream(flag) << "x";
  auto unready = events_.WaitFor("flaky", ReplicaState::kUnready, &pos);
  ASSERT_TRUE(unready);
  EXPECT_EQ(unready->reason,
            "readiness probe failed 2 times in a row: GET /v2/health/ready: HTTP 503");
  fs::remove(flag);
  auto ready = events_.WaitFor("flaky", ReplicaState::kReady, &pos);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->reason, "readiness probe succeeded again");
  EXPECT_EQ(ready->status.restart_count, 0) << "unready is not restarted";
}

TEST_F(SupervisorTest, StartTimeoutKillsAndRestarts) {
  ReplicaSpec spec = Shell("slow", "sleep 100");
  spec.lifecycle.start_timeout = milliseconds(300);
  ASSERT_TRUE(supervisor_->Start(spec).ok());
  size_t pos = 0;
  auto started = events_.WaitFor("slow", ReplicaState::kStarting, &pos);
  ASSERT_TRUE(started);
  const pid_t pid = started->status.pid;
  auto failed = events_.WaitFor("slow", ReplicaState::kFailed, &pos);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->reason, "not ready within the start timeout of 300ms");
  auto restarted = events_.WaitFor("slow", ReplicaState::kStarting, &pos);
  ASSERT_TRUE(restarted);
  EXPECT_FALSE(Alive(pid));
  EXPECT_EQ(restarted->status.restart_count, 1);
}

TEST_F(SupervisorTest, RotatesTheLogPastItsCap) {
  ReplicaSpec spec = Shell("chatty",
                           "i=0; while [ $i -lt 200 ]; do echo line-$i-padding-padding-padding; "
                           "i=$((i+1)); done; echo last-line; sleep 100");
  spec.log_max_bytes = 1000;
  ASSERT_TRUE(supervisor_->Start(spec).ok());
  const fs::path log = spec.process.log_path;
  const fs::path rotated = log.string() + ".1";
  bool done = false;
  for (int i = 0; i < 500 && !done; ++i) {
    done = fs::exists(rotated) && Read(rotated).find("last-line") != std::string::npos &&
           fs::file_size(log) == 0;
    if (!done) usleep(10 * 1000);
  }
  ASSERT_TRUE(done) << "log " << fs::file_size(log) << " bytes, .1 exists: " << fs::exists(rotated);
  EXPECT_GT(fs::file_size(rotated), 1000u);
}

TEST_F(SupervisorTest, RejectsBadSpecsNamingTheField) {
  ReplicaSpec spec = Shell("bad", "true");
  spec.process.argv = {"no-such-program-quiver"};
  Status s = supervisor_->Start(spec);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("replica 'bad'"), std::string::npos) << s.message();

  spec = Shell("bad", "true");
  spec.http_port = 0;
  s = supervisor_->Start(spec);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("http_port: 0"), std::string::npos) << s.message();

  spec = Shell("bad", "true");
  spec.readiness.kind = ProbeTarget::Kind::kHttpGet;
  spec.readiness.path = "health";
  s = supervisor_->Start(spec);
  EXPECT_NE(s.message().find("readiness.path: 'health' must start with '/'"), std::string::npos);

  spec = Shell("dup", "sleep 100");
  ASSERT_TRUE(supervisor_->Start(spec).ok());
  EXPECT_EQ(supervisor_->Start(spec).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(supervisor_->Stop("nobody").code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace quiver::control
