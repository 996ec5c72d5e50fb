#include "control/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace quiver::control {
namespace {

namespace fs = std::filesystem;

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quiver_process_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    log_ = (dir_ / "out.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  ProcessSpec Shell(const std::string& script) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.log_path = log_;
    return spec;
  }

  // Waits for the exit through the pidfd, as the supervisor does, and reaps it.
  static std::string WaitExit(const SpawnedProcess& p) {
    pollfd pfd{p.pidfd.get(), POLLIN, 0};
    EXPECT_EQ(::poll(&pfd, 1, 10000), 1) << "process did not exit";
    return ReapChild(p.pidfd.get()).value_or("not reaped");
  }

  std::string Log() {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
  std::string log_;
};

TEST_F(ProcessTest, CapturesOutputAndExitCode) {
  auto p = SpawnProcess(Shell("echo out; echo err >&2; exit 3"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_GT(p->pid, 0);
  EXPECT_EQ(WaitExit(*p), "exited with code 3");
  EXPECT_EQ(Log(), "out\nerr\n");
  // A second run appends.
  auto q = SpawnProcess(Shell("echo again"));
  ASSERT_TRUE(q.ok());
  WaitExit(*q);
  EXPECT_EQ(Log(), "out\nerr\nagain\n");
}

TEST_F(ProcessTest, ReportsTheKillingSignal) {
  auto p = SpawnProcess(Shell("kill -9 $$"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(WaitExit(*p), "killed by signal 9 (Killed)");
}

TEST_F(ProcessTest, EnvironmentIsExactlyTheSpecs) {
  ProcessSpec spec = Shell("env | sort");
  spec.env = {"QUIVER_A=1", "MODEL=x y"};
  ::setenv("QUIVER_LEAK_CHECK", "leaked", 1);
  auto p = SpawnProcess(spec);
  ::unsetenv("QUIVER_LEAK_CHECK");
  ASSERT_TRUE(p.ok());
  WaitExit(*p);
  const std::string log = Log();
  EXPECT_NE(log.find("QUIVER_A=1\n"), std::string::npos) << log;
  EXPECT_NE(log.find("MODEL=x y\n"), std::string::npos) << log;
  EXPECT_NE(log.find("PATH=/usr/local/bin:/usr/bin:/bin\n"), std::string::npos) << log;
  EXPECT_EQ(log.find("QUIVER_LEAK_CHECK"), std::string::npos) << log;
}

TEST_F(ProcessTest, OwnProcessGroupNoInheritedFdsAndWorkingDir) {
  // A descriptor opened without O_CLOEXEC, as a careless library would.
  const int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 3);
  ProcessSpec spec = Shell("pwd; if [ -e /proc/self/fd/" + std::to_string(leaky) +
                           " ]; then echo leaked; else echo closed; fi; sleep 5");
  spec.working_dir = dir_.string();
  auto p = SpawnProcess(spec);
  ::close(leaky);
  ASSERT_TRUE(p.ok());
  auto stat = ReadProcStat(p->pid);
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->pgrp, p->pid) << "a replica leads its own process group";
  EXPECT_EQ(stat->start_time, p->start_time);
  EXPECT_GT(p->start_time, 0u);
  // The shell writes before it sleeps; kill it only once its output is there.
  for (int i = 0; i < 500 && Log().find("closed") == std::string::npos; ++i) usleep(10 * 1000);
  SignalProcessGroup(p->pid, SIGKILL);
  EXPECT_EQ(WaitExit(*p), "killed by signal 9 (Killed)");
  EXPECT_EQ(Log(), dir_.string() + "\nclosed\n");
}

TEST_F(ProcessTest, DefaultSignalDispositionsEvenWhenTheParentIgnores) {
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGTERM, &ignore, &old);
  auto p = SpawnProcess(Shell("sleep 5"));
  ::sigaction(SIGTERM, &old, nullptr);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(SignalPidfd(p->pidfd.get(), SIGTERM).ok());
  EXPECT_EQ(WaitExit(*p), "killed by signal 15 (Terminated)");
}

TEST_F(ProcessTest, ClearErrorsForBadSpecs) {
  ProcessSpec spec = Shell("true");
  spec.argv = {"no-such-program-quiver"};
  auto p = SpawnProcess(spec);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_NE(p.status().message().find("'no-such-program-quiver'"), std::string::npos);

  spec = Shell("true");
  spec.working_dir = (dir_ / "missing").string();
  p = SpawnProcess(spec);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("working_dir"), std::string::npos);

  spec = Shell("true");
  spec.log_path = (dir_ / "no" / "such" / "dir.log").string();
  p = SpawnProcess(spec);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("log_path"), std::string::npos);

  spec.argv.clear();
  EXPECT_EQ(SpawnProcess(spec).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ProcessTest, ResolvesProgramsThroughTheChildsPath) {
  auto sh = ResolveExecutable("sh", {"PATH=/nonexistent:/bin"});
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(*sh, "/bin/sh");
  EXPECT_FALSE(ResolveExecutable("sh", {"PATH=/nonexistent"}).ok());
}

TEST_F(ProcessTest, ProcStatOfMissingProcessIsNotFound) {
  auto self = ReadProcStat(::getpid());
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(self->pgrp, ::getpgrp());
  // pid_max is at most 2^22.
  EXPECT_EQ(ReadProcStat(1 << 23).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenPidfd(1 << 23).status().code(), StatusCode::kNotFound);
}

TEST(ArgvHashTest, StableAndSensitiveToArgumentBoundaries) {
  EXPECT_EQ(ArgvHash({"quiver", "serve"}), ArgvHash({"quiver", "serve"}));
  EXPECT_NE(ArgvHash({"ab", "c"}), ArgvHash({"a", "bc"}));
  EXPECT_NE(ArgvHash({"quiver", "serve", "--http-port", "1"}),
            ArgvHash({"quiver", "serve", "--http-port", "2"}));
  // Persisted with adopted replicas: the value must never change between daemon versions.
  EXPECT_EQ(ArgvHash({"quiver", "serve"}), "fb2280f8d235869c");
}

}  // namespace
}  // namespace quiver::control
