#include "control/replica_lifecycle.h"

#include <gtest/gtest.h>

namespace quiver::control {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

LifecycleOptions TestOptions() {
  LifecycleOptions o;
  o.probe_initial_interval = milliseconds(50);
  o.probe_period = seconds(1);
  o.failure_threshold = 3;
  o.start_timeout = seconds(30);
  return o;
}

std::vector<ReplicaState> States(ReplicaLifecycle& l) {
  std::vector<ReplicaState> out;
  for (const auto& t : l.TakeTransitions()) out.push_back(t.state);
  return out;
}

using Actions = std::vector<LifecycleAction>;
const TimePoint t0 = TimePoint() + seconds(1000);

TEST(BackoffTest, DoublesFromOneSecondAndCapsAtFiveMinutes) {
  BackoffOptions b;
  EXPECT_EQ(BackoffDelay(b, 1), seconds(1));
  EXPECT_EQ(BackoffDelay(b, 2), seconds(2));
  EXPECT_EQ(BackoffDelay(b, 3), seconds(4));
  EXPECT_EQ(BackoffDelay(b, 9), seconds(256));
  EXPECT_EQ(BackoffDelay(b, 10), minutes(5));
  EXPECT_EQ(BackoffDelay(b, 1000), minutes(5));
}

TEST(ReplicaLifecycleTest, ProbesWithGrowingIntervalUntilReady) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawned(t0, false);
  EXPECT_EQ(States(l), std::vector{ReplicaState::kStarting});
  EXPECT_EQ(l.NextDeadline(), t0 + milliseconds(50));
  EXPECT_EQ(l.Due(t0 + milliseconds(49)), Actions{});
  EXPECT_EQ(l.Due(t0 + milliseconds(50)), Actions{LifecycleAction::kProbe});
  // A probe in flight is not started twice.
  EXPECT_EQ(l.Due(t0 + seconds(2)), Actions{});
  l.OnProbeResult(t0 + milliseconds(60), false, "connection refused");
  EXPECT_EQ(l.NextDeadline(), t0 + milliseconds(110));  // 50 ms after the answer
  EXPECT_EQ(l.Due(t0 + milliseconds(110)), Actions{LifecycleAction::kProbe});
  l.OnProbeResult(t0 + milliseconds(110), false, "connection refused");
  EXPECT_EQ(l.NextDeadline(), t0 + milliseconds(210));  // doubled: 100 ms
  EXPECT_EQ(l.state(), ReplicaState::kStarting);
  EXPECT_EQ(l.Due(t0 + milliseconds(210)), Actions{LifecycleAction::kProbe});
  l.OnProbeResult(t0 + milliseconds(215), true, "HTTP 200");
  auto t = l.TakeTransitions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, ReplicaState::kReady);
  // Ready replicas are probed at the period.
  EXPECT_EQ(l.NextDeadline(), t0 + milliseconds(1215));
}

TEST(ReplicaLifecycleTest, ProbesStayFastForTheFastWindowThenGrow) {
  LifecycleOptions o = TestOptions();
  o.probe_initial_interval = milliseconds(10);
  o.probe_fast_for = seconds(2);
  ReplicaLifecycle l(o);
  l.OnSpawned(t0, false);
  TimePoint t = t0 + milliseconds(10);
  // Within the fast window every failed probe is followed by another 10 ms later.
  while (t < t0 + seconds(2)) {
    ASSERT_EQ(l.Due(t), Actions{LifecycleAction::kProbe});
    l.OnProbeResult(t, false, "connection refused");
    ASSERT_EQ(l.NextDeadline(), t + milliseconds(10));
    t += milliseconds(10);
  }
  // Past it the interval doubles from the initial one.
  ASSERT_EQ(l.Due(t), Actions{LifecycleAction::kProbe});
  l.OnProbeResult(t, false, "connection refused");
  EXPECT_EQ(l.NextDeadline(), t + milliseconds(10));
  t += milliseconds(10);
  ASSERT_EQ(l.Due(t), Actions{LifecycleAction::kProbe});
  l.OnProbeResult(t, false, "connection refused");
  EXPECT_EQ(l.NextDeadline(), t + milliseconds(20));
}

TEST(ReplicaLifecycleTest, ProbeIntervalNeverExceedsThePeriod) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawned(t0, false);
  TimePoint now = t0;
  for (int i = 0; i < 10; ++i) {
    now = *l.NextDeadline();
    ASSERT_EQ(l.Due(now), Actions{LifecycleAction::kProbe});
    l.OnProbeResult(now, false, "refused");
  }
  EXPECT_EQ(*l.NextDeadline() - now, seconds(1));
}

TEST(ReplicaLifecycleTest, ReadyBecomesUnreadyAfterThresholdFailuresAndRecovers) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawned(t0, false);
  ASSERT_EQ(l.Due(t0 + milliseconds(50)).size(), 1u);
  l.OnProbeResult(t0 + milliseconds(50), true, "HTTP 200");
  l.TakeTransitions();
  TimePoint now = t0 + milliseconds(50);
  for (int i = 0; i < 2; ++i) {
    now += seconds(1);
    ASSERT_EQ(l.Due(now), Actions{LifecycleAction::kProbe});
    l.OnProbeResult(now, false, "HTTP 503");
    EXPECT_EQ(l.state(), ReplicaState::kReady) << "after " << i + 1 << " failures";
  }
  // A success in between resets the count.
  now += seconds(1);
  ASSERT_EQ(l.Due(now).size(), 1u);
  l.OnProbeResult(now, true, "HTTP 200");
  for (int i = 0; i < 3; ++i) {
    now += seconds(1);
    ASSERT_EQ(l.Due(now).size(), 1u);
    l.OnProbeResult(now, false, "GET /v2/health/ready: HTTP 503");
  }
  auto t = l.TakeTransitions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, ReplicaState::kUnready);
  EXPECT_EQ(t[0].reason, "readiness probe failed 3 times in a row: GET /v2/health/ready: HTTP 503");
  now += seconds(1);
  ASSERT_EQ(l.Due(now).size(), 1u);
  l.OnProbeResult(now, true, "HTTP 200");
  EXPECT_EQ(States(l), std::vector{ReplicaState::kReady});
}

TEST(ReplicaLifecycleTest, CrashRestartsWithExponentialBackoff) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawned(t0, false);
  l.TakeTransitions();
  TimePoint now = t0 + seconds(5);
  const std::vector<Duration> expected = {seconds(1), seconds(2), seconds(4), seconds(8)};
  for (size_t i = 0; i < expected.size(); ++i) {
    l.OnExited(now, "exited with code 1");
    auto t = l.TakeTransitions();
    ASSERT_EQ(t.size(), 1u);
    EXPECT_EQ(t[0].state, ReplicaState::kFailed);
    EXPECT_NE(t[0].reason.find("exited with code 1; restarting in"), std::string::npos);
    EXPECT_EQ(l.NextDeadline(), now + expected[i]);
    EXPECT_EQ(l.Due(now + expected[i] - milliseconds(1)), Actions{});
    now += expected[i];
    EXPECT_EQ(l.Due(now), Actions{LifecycleAction::kSpawn});
    EXPECT_EQ(l.restart_count(), static_cast<int>(i + 1));
    l.OnSpawned(now, false);
    EXPECT_EQ(States(l), std::vector{ReplicaState::kStarting});
    now += milliseconds(10);
  }
}

TEST(ReplicaLifecycleTest, BackoffResetsAfterStayingReady) {
  LifecycleOptions o = TestOptions();
  o.backoff.reset_after = minutes(10);
  ReplicaLifecycle l(o);
  TimePoint now = t0;
  // Three quick crashes: the next delay would be 8 s.
  for (int i = 0; i < 3; ++i) {
    l.OnSpawned(now, false);
    l.OnExited(now + milliseconds(10), "exited with code 1");
    now = *l.restart_at();
    ASSERT_EQ(l.Due(now), Actions{LifecycleAction::kSpawn});
  }
  l.OnSpawned(now, false);
  ASSERT_EQ(l.Due(now + milliseconds(50)).size(), 1u);
  l.OnProbeResult(now + milliseconds(50), true, "HTTP 200");
  // Ready for less than reset_after: backoff keeps growing.
  TimePoint crash = now + minutes(9);
  ReplicaLifecycle copy = l;
  copy.OnExited(crash, "exited with code 1");
  EXPECT_EQ(*copy.restart_at() - crash, seconds(8));
  // Ready for reset_after: back to the initial delay.
  crash = now + minutes(11);
  l.OnExited(crash, "exited with code 1");
  EXPECT_EQ(*l.restart_at() - crash, seconds(1));
}

TEST(ReplicaLifecycleTest, StartTimeoutKillsAndRestarts) {
  LifecycleOptions o = TestOptions();
  o.start_timeout = seconds(10);
  ReplicaLifecycle l(o);
  l.OnSpawned(t0, false);
  l.TakeTransitions();
  TimePoint now = t0;
  while (now < t0 + seconds(10)) {
    auto next = *l.NextDeadline();
    ASSERT_LE(next, t0 + seconds(10));
    now = next;
    for (auto a : l.Due(now)) {
      if (a == LifecycleAction::kProbe) l.OnProbeResult(now, false, "HTTP 503");
    }
    if (l.state() == ReplicaState::kFailed) break;
  }
  EXPECT_EQ(now, t0 + seconds(10));
  auto t = l.TakeTransitions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, ReplicaState::kFailed);
  EXPECT_EQ(t[0].reason, "not ready within the start timeout of 10s");
  EXPECT_TRUE(l.process_running());
  // The restart waits for the killed process to be gone.
  EXPECT_EQ(l.Due(now + minutes(1)), Actions{});
  l.OnExited(now + milliseconds(5), "killed by signal 9 (Killed)");
  EXPECT_EQ(l.TakeTransitions().size(), 0u);  // already reported as Failed
  EXPECT_EQ(l.Due(now + milliseconds(5) + seconds(1)), Actions{LifecycleAction::kSpawn});
}

TEST(ReplicaLifecycleTest, StopSendsTermThenKillAfterGrace) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawned(t0, false);
  l.TakeTransitions();
  EXPECT_TRUE(l.RequestStop(t0 + seconds(1), seconds(30)));
  EXPECT_EQ(States(l), std::vector{ReplicaState::kDraining});
  EXPECT_EQ(l.NextDeadline(), t0 + seconds(31));
  EXPECT_EQ(l.Due(t0 + seconds(30)), Actions{});  // no probe while draining
  EXPECT_EQ(l.Due(t0 + seconds(31)), Actions{LifecycleAction::kKill});
  EXPECT_EQ(l.Due(t0 + seconds(40)), Actions{});  // killed once
  l.OnExited(t0 + seconds(31), "killed by signal 9 (Killed)");
  auto t = l.TakeTransitions();
  ASSERT_EQ(t.back().state, ReplicaState::kStopped);
  EXPECT_EQ(t.back().reason, "stopped: killed by signal 9 (Killed)");
  EXPECT_EQ(l.NextDeadline(), std::nullopt);
}

TEST(ReplicaLifecycleTest, ExitDuringGraceStopsWithoutRestart) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawned(t0, false);
  ASSERT_TRUE(l.RequestStop(t0, seconds(30)));
  l.OnExited(t0 + seconds(1), "exited with code 0");
  EXPECT_EQ(l.state(), ReplicaState::kStopped);
  EXPECT_EQ(l.Due(t0 + minutes(10)), Actions{});
  EXPECT_EQ(l.restart_count(), 0);
}

TEST(ReplicaLifecycleTest, StopDuringBackoffCancelsTheRestart) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawned(t0, false);
  l.OnExited(t0 + seconds(1), "exited with code 1");
  l.TakeTransitions();
  EXPECT_FALSE(l.RequestStop(t0 + seconds(1), seconds(30)));
  EXPECT_EQ(States(l), std::vector{ReplicaState::kStopped});
  EXPECT_EQ(l.Due(t0 + minutes(10)), Actions{});
}

TEST(ReplicaLifecycleTest, SpawnFailureIsRetriedWithBackoff) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawnFailed(t0, "cannot start: permission denied");
  auto t = l.TakeTransitions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].state, ReplicaState::kFailed);
  EXPECT_EQ(t[0].reason, "cannot start: permission denied; restarting in 1s");
  EXPECT_EQ(l.Due(t0 + seconds(1)), Actions{LifecycleAction::kSpawn});
}

TEST(ReplicaLifecycleTest, AdoptedProcessIsProbedAtOnceAndIsNoRestart) {
  ReplicaLifecycle l(TestOptions());
  l.OnSpawned(t0, true);
  auto t = l.TakeTransitions();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].reason, "adopted running process");
  EXPECT_EQ(l.Due(t0), Actions{LifecycleAction::kProbe});
  EXPECT_EQ(l.restart_count(), 0);
}

}  // namespace
}  // namespace quiver::control
