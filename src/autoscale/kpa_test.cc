// The decider and the replica rules against Knative's formulas, with a fake clock (plain time
// points) and hand-derived numbers. Unless a test says otherwise the config is Knative's
// default: target 70 (100 × 70 %), stable window 60 s, panic window 6 s, panic at 200 %,
// scale-up rate 1000, scale-down rate 2, grace 30 s.

#include "autoscale/kpa.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

namespace quiver::autoscale {
namespace {

using ::testing::HasSubstr;

TimePoint At(double seconds) {
  return TimePoint{} + std::chrono::milliseconds(std::llround(seconds * 1000));
}

// Records one observation per second over [from, to): `concurrency` in flight and `rps`
// requests arriving per second, as the control plane reports the gateway's counters.
void Feed(RevisionAutoscaler& a, double from, double to, double concurrency, double rps = 0) {
  for (double t = from; t < to; t += 1) {
    const double end = std::min(t + 1, to);
    a.Record(Observation{At(t), At(end), concurrency, rps * (end - t)});
  }
}

constexpr bool kRouted = true;
constexpr bool kUnrouted = false;

TEST(KpaDeciderTest, StableScaling) {
  RevisionAutoscaler a(KpaConfig{}, At(0), 1);
  Feed(a, 0, 60, 350);
  // At 60 s the stable window is buckets 1..60: 350 throughout. ceil(350 / 70) = 5.
  // Panic: 350 / 70 = 5 replicas on 5 ready is 100 % < 200 %.
  ScaleDecision d = a.Decide(At(60), 5, 5, kRouted);
  EXPECT_EQ(d.stable_value, 350);
  EXPECT_EQ(d.panic_value, 350);
  EXPECT_EQ(d.decider_wants, 5);
  EXPECT_EQ(d.replicas, 5);
  EXPECT_FALSE(d.panicking);
  EXPECT_THAT(d.reason, HasSubstr("stable concurrency 350 / target 70 → 5"));
  // One more in flight per replica on average needs a sixth: ceil(351 / 70) = 6.
  RevisionAutoscaler b(KpaConfig{}, At(0), 1);
  Feed(b, 0, 60, 351);
  EXPECT_EQ(b.Decide(At(60), 5, 5, kRouted).replicas, 6);
}

TEST(KpaDeciderTest, RpsMetricScalesOnRequestRate) {
  KpaConfig c;
  c.metric = Metric::kRps;
  c.total_target = 200;
  c.target = 140;
  RevisionAutoscaler a(c, At(0), 1);
  Feed(a, 0, 10, /*concurrency=*/1, /*rps=*/420);
  // 4200 requests over the 10 s observed: 420/s; ceil(420 / 140) = 3 on 3 ready.
  ScaleDecision d = a.Decide(At(10), 3, 3, kRouted);
  EXPECT_EQ(d.stable_value, 420);
  EXPECT_EQ(d.replicas, 3);
  EXPECT_THAT(d.reason, HasSubstr("stable rps 420"));
}

TEST(KpaDeciderTest, MaxScaleUpRate) {
  KpaConfig c;
  c.max_scale_up_rate = 2;
  RevisionAutoscaler a(c, At(0), 1);
  Feed(a, 0, 60, 700);
  // Wants ceil(700 / 70) = 10, but at most ceil(2 × 2 ready) = 4.
  ScaleDecision d = a.Decide(At(60), 2, 2, kRouted);
  EXPECT_EQ(d.replicas, 4);
  EXPECT_THAT(d.reason, HasSubstr("max-scale-up-rate 2"));
  // At zero ready the rate counts one replica: ceil(2 × 1) = 2.
  RevisionAutoscaler b(c, At(0), 0);
  Feed(b, 0, 60, 700);
  EXPECT_EQ(b.Decide(At(60), 0, 0, kRouted).replicas, 2);
}

TEST(KpaDeciderTest, MaxScaleDownRate) {
  RevisionAutoscaler a(KpaConfig{}, At(0), 1);
  Feed(a, 0, 60, 0);
  // No load: at most down to floor(10 / 2) = 5, then floor(5 / 2) = 2, then 1, then 0.
  ScaleDecision d = a.Decide(At(60), 10, 10, kRouted);
  EXPECT_EQ(d.replicas, 5);
  EXPECT_THAT(d.reason, HasSubstr("max-scale-down-rate 2"));
  EXPECT_EQ(a.Decide(At(62), 5, 5, kRouted).replicas, 2);
  EXPECT_EQ(a.Decide(At(64), 2, 2, kRouted).replicas, 1);
  d = a.Decide(At(66), 1, 1, kRouted);
  EXPECT_EQ(d.decider_wants, 0);
  EXPECT_EQ(d.replicas, 1);  // the grace period has not passed
}

TEST(KpaDeciderTest, PanicAtTwiceTheReadyCapacityAndNoScaleDownUntilAStableWindowPasses) {
  RevisionAutoscaler a(KpaConfig{}, At(0), 1);
  Feed(a, 0, 54, 50);
  Feed(a, 54, 60, 300);
  // At 60: panic window buckets 55..60 hold 300 → ceil(300 / 70) = 5 on 1 ready = 500 %.
  // Stable: (50 · 53 + 300 · 6) / 59 = 75.423729 → ceil(/70) = 2. Panic takes the larger.
  ScaleDecision d = a.Decide(At(60), 1, 1, kRouted);
  EXPECT_TRUE(d.panicking);
  EXPECT_DOUBLE_EQ(d.stable_value, 75.423729);
  EXPECT_EQ(d.panic_value, 300);
  EXPECT_EQ(d.replicas, 5);
  EXPECT_THAT(d.reason, HasSubstr("panic: concurrency 300 over 6s needs 5 >= 2 × 1 ready"));

  // The burst is over: the stable value asks for 1 and the rate limit allows 2, but panic
  // mode keeps 5 until a stable window (60 s) has passed since the last tick over threshold.
  Feed(a, 60, 70, 0);
  d = a.Decide(At(70), 5, 5, kRouted);
  EXPECT_TRUE(d.panicking);
  EXPECT_EQ(d.panic_value, 0);
  EXPECT_EQ(d.replicas, 5);
  Feed(a, 70, 120, 0);
  d = a.Decide(At(120), 5, 5, kRouted);  // 60 + 60 is not before 120
  EXPECT_TRUE(d.panicking);
  EXPECT_EQ(d.replicas, 5);
  // At 121 panic ends; nothing in the stable window (buckets 62..121), so down by the rate:
  // floor(5 / 2) = 2.
  Feed(a, 120, 121, 0);
  d = a.Decide(At(121), 5, 5, kRouted);
  EXPECT_FALSE(d.panicking);
  EXPECT_EQ(d.replicas, 2);
}

TEST(KpaDeciderTest, PanicThresholdIsInclusive) {
  // 280 in flight: ceil(280 / 70) = 4 on 2 ready is exactly 200 %: panic.
  RevisionAutoscaler at(KpaConfig{}, At(0), 1);
  Feed(at, 0, 6, 280);
  EXPECT_TRUE(at.Decide(At(6), 2, 2, kRouted).panicking);
  // 210: ceil(210 / 70) = 3 on 2 ready is 150 %: no panic.
  RevisionAutoscaler below(KpaConfig{}, At(0), 1);
  Feed(below, 0, 6, 210);
  ScaleDecision d = below.Decide(At(6), 2, 2, kRouted);
  EXPECT_FALSE(d.panicking);
  EXPECT_EQ(d.replicas, 3);
}

TEST(KpaDeciderTest, PanicRaisesButNeverLowersWhilePanicking) {
  RevisionAutoscaler a(KpaConfig{}, At(0), 1);
  Feed(a, 0, 6, 700);
  EXPECT_EQ(a.Decide(At(6), 1, 1, kRouted).replicas, 10);  // 1000 % of 1 ready
  // Still over the threshold with more (1400 → 20 on 10 ready is 200 %): raised.
  Feed(a, 6, 12, 1400);
  EXPECT_EQ(a.Decide(At(12), 10, 10, kRouted).replicas, 20);
  // Less load (ceil(700/70) = 10): not over the threshold, and no lowering from 20.
  Feed(a, 12, 18, 700);
  ScaleDecision d = a.Decide(At(18), 20, 20, kRouted);
  EXPECT_TRUE(d.panicking);
  EXPECT_EQ(d.replicas, 20);
  EXPECT_THAT(d.reason, HasSubstr("no scale-down"));
}

TEST(KpaDeciderTest, StartsInPanicWithMoreThanOneReadyReplica) {
  // A new autoscaler (daemon restart) over 3 ready replicas has no history: it must not
  // drop them on its first empty averages.
  RevisionAutoscaler a(KpaConfig{}, At(0), 3);
  ScaleDecision d = a.Decide(At(10), 3, 3, kRouted);
  EXPECT_TRUE(d.panicking);
  EXPECT_EQ(d.replicas, 3);
  // Panic ends after the stable window (60 s after creation); then down by the rate limit.
  d = a.Decide(At(61), 3, 3, kRouted);
  EXPECT_FALSE(d.panicking);
  EXPECT_EQ(d.replicas, 1);  // floor(3 / 2) = 1

  // With one ready replica at creation it starts calm.
  RevisionAutoscaler calm(KpaConfig{}, At(0), 1);
  d = calm.Decide(At(10), 3, 3, kRouted);
  EXPECT_FALSE(d.panicking);
  EXPECT_EQ(d.replicas, 1);
}

TEST(KpaDeciderTest, ScaleDownDelayKeepsTheMaximumOverTheDelay) {
  KpaConfig c;
  c.stable_window = Millis(6'000);
  c.panic_window = Millis(1'000);
  c.scale_down_delay = Millis(10'000);
  RevisionAutoscaler a(c, At(0), 1);
  Feed(a, 0, 6, 350);
  EXPECT_EQ(a.Decide(At(6), 5, 5, kRouted).replicas, 5);
  Feed(a, 6, 12, 0);
  // At 12 the decider alone would go to floor(5 / 2) = 2, but 5 was wanted 6 s ago.
  ScaleDecision d = a.Decide(At(12), 5, 5, kRouted);
  EXPECT_EQ(d.replicas, 5);
  EXPECT_THAT(d.reason, HasSubstr("scale-down-delay 10s holds 5"));
  Feed(a, 12, 14, 0);
  EXPECT_EQ(a.Decide(At(14), 5, 5, kRouted).replicas, 5);
  Feed(a, 14, 16, 0);
  // At 16 the decision of 6 s is 10 s old and leaves the window.
  EXPECT_EQ(a.Decide(At(16), 5, 5, kRouted).replicas, 2);

  // The same without a delay goes down at 12.
  c.scale_down_delay = Millis(0);
  RevisionAutoscaler b(c, At(0), 1);
  Feed(b, 0, 6, 350);
  b.Decide(At(6), 5, 5, kRouted);
  Feed(b, 6, 12, 0);
  EXPECT_EQ(b.Decide(At(12), 5, 5, kRouted).replicas, 2);
}

TEST(KpaDeciderTest, PartialWindowAtStartAveragesWhatWasSeen) {
  RevisionAutoscaler a(KpaConfig{}, At(0), 1);
  Feed(a, 0, 10, 140);
  // 10 s observed of a 60 s window: average 140 (not 140 · 10 / 60 = 23.3 → 1 replica).
  ScaleDecision d = a.Decide(At(10), 2, 2, kRouted);
  EXPECT_EQ(d.stable_value, 140);
  EXPECT_EQ(d.replicas, 2);
}

TEST(KpaDeciderTest, MinAndMaxScale) {
  KpaConfig c;
  c.min_scale = 2;
  c.max_scale = 4;
  RevisionAutoscaler a(c, At(0), 1);
  ScaleDecision d = a.Decide(At(2), 2, 2, kRouted);
  EXPECT_EQ(d.decider_wants, 1);  // floor(2 / 2) by the rate limit
  EXPECT_EQ(d.replicas, 2);
  EXPECT_THAT(d.reason, HasSubstr("min-scale 2"));
  Feed(a, 0, 10, 700);
  d = a.Decide(At(10), 2, 2, kRouted);
  EXPECT_EQ(d.decider_wants, 10);
  EXPECT_EQ(d.replicas, 4);
  EXPECT_THAT(d.reason, HasSubstr("max-scale 4"));
}

TEST(KpaDeciderTest, UnroutedRevisionGoesToZeroAtOnce) {
  KpaConfig c;
  c.min_scale = 2;  // applies only while routed
  RevisionAutoscaler a(c, At(0), 1);
  Feed(a, 0, 10, 140);
  EXPECT_EQ(a.Decide(At(10), 2, 2, kRouted).replicas, 2);
  // Traffic moved away: no grace, no min-scale, whatever the window still holds.
  ScaleDecision d = a.Decide(At(12), 2, 2, kUnrouted);
  EXPECT_EQ(d.replicas, 0);
  EXPECT_THAT(d.reason, HasSubstr("not routed"));
}

TEST(KpaDeciderTest, InitialScaleHoldsUntilFirstReached) {
  KpaConfig c;
  c.initial_scale = 3;
  RevisionAutoscaler a(c, At(0), 0);
  ScaleDecision d = a.Decide(At(1), 0, 0, kRouted);
  EXPECT_EQ(d.decider_wants, 0);
  EXPECT_EQ(d.replicas, 3);
  EXPECT_THAT(d.reason, HasSubstr("initial-scale 3 not reached yet"));
  EXPECT_EQ(a.Decide(At(3), 3, 2, kRouted).replicas, 3);
  // Reached once: from now on the decider and bounds rule; no load → floor(3 / 2) = 1.
  EXPECT_EQ(a.Decide(At(5), 3, 3, kRouted).replicas, 1);
  EXPECT_EQ(a.Decide(At(7), 1, 0, kRouted).replicas, 1);  // not reinstated when ready drops

  // Never reached: given up after Knative's activation timeout (600 s + 10 s), then the
  // revision may go to zero like any idle one.
  RevisionAutoscaler stuck(c, At(0), 0);
  EXPECT_EQ(stuck.Decide(At(1), 3, 0, kRouted).replicas, 3);
  EXPECT_EQ(stuck.Decide(At(609), 3, 0, kRouted).replicas, 3);
  d = stuck.Decide(At(611), 3, 0, kRouted);
  EXPECT_EQ(d.replicas, 0);
  EXPECT_THAT(d.reason, HasSubstr("not reached in 10m10s"));
}

TEST(KpaDeciderTest, InitialScaleZeroStartsAtZero) {
  KpaConfig c;
  c.initial_scale = 0;
  RevisionAutoscaler a(c, At(0), 0);
  ScaleDecision d = a.Decide(At(0), 0, 0, kRouted);
  EXPECT_EQ(d.replicas, 0);
  EXPECT_THAT(d.reason, HasSubstr("stay at zero"));
}

TEST(KpaDeciderTest, ScaleToZeroOnlyAfterTheGracePeriod) {
  RevisionAutoscaler a(KpaConfig{}, At(0), 1);
  Feed(a, 0, 10, 10);
  // The load of 0-10 s stays in the stable window until bucket 9 leaves it at 69 s; from the
  // 70 s tick the decider wants 0, and the revision keeps one replica for the 30 s grace.
  for (int t = 10; t < 100; t += 2) {
    Feed(a, t - 2, t, 0);
    ScaleDecision d = a.Decide(At(t), 1, 1, kRouted);
    EXPECT_EQ(d.decider_wants, t < 70 ? 1 : 0) << "t=" << t;
    EXPECT_EQ(d.replicas, 1) << "t=" << t;
  }
  Feed(a, 98, 100, 0);
  ScaleDecision d = a.Decide(At(100), 1, 1, kRouted);
  EXPECT_EQ(d.replicas, 0);
  EXPECT_THAT(d.reason, HasSubstr("no traffic for 30s: scale to zero"));
  EXPECT_EQ(a.Decide(At(102), 0, 0, kRouted).replicas, 0);
}

TEST(KpaDeciderTest, RetentionLongerThanGraceHoldsTheLastReplica) {
  KpaConfig c;
  c.scale_to_zero_retention = Millis(45'000);
  RevisionAutoscaler a(c, At(0), 1);
  Feed(a, 0, 10, 10);
  for (int t = 10; t <= 114; t += 2) {
    Feed(a, t - 2, t, 0);
    EXPECT_EQ(a.Decide(At(t), 1, 1, kRouted).replicas, 1) << "t=" << t;
  }
  Feed(a, 114, 116, 0);
  EXPECT_EQ(a.Decide(At(116), 1, 1, kRouted).replicas, 0);  // idle since 70 + 45 s
}

TEST(KpaDeciderTest, ScaleToZeroDisabledKeepsOne) {
  KpaConfig c;
  c.enable_scale_to_zero = false;
  RevisionAutoscaler a(c, At(0), 1);
  a.Decide(At(0), 1, 1, kRouted);
  ScaleDecision d = a.Decide(At(200), 1, 1, kRouted);
  EXPECT_EQ(d.decider_wants, 0);
  EXPECT_EQ(d.replicas, 1);
  EXPECT_THAT(d.reason, HasSubstr("scale to zero disabled"));
}

TEST(KpaDeciderTest, NewReplicaIsKeptForAStableWindowBeforeZero) {
  // Knative marks a revision inactive only after it has been active for the stable window.
  RevisionAutoscaler a(KpaConfig{}, At(0), 0);
  EXPECT_EQ(a.Decide(At(0), 0, 0, kRouted).replicas, 1);  // initial scale 1
  EXPECT_EQ(a.Decide(At(5), 1, 1, kRouted).replicas, 1);  // ready at 5
  ScaleDecision d = a.Decide(At(40), 1, 1, kRouted);      // idle 40 s > grace, ready 35 s
  EXPECT_EQ(d.replicas, 1);
  EXPECT_THAT(d.reason, HasSubstr("ready for only 35s of the 1m stable window"));
  EXPECT_EQ(a.Decide(At(65), 1, 1, kRouted).replicas, 0);
}

TEST(KpaDeciderTest, RequestAtZeroScalesUpOnTheNextDecision) {
  KpaConfig c;
  c.initial_scale = 0;
  RevisionAutoscaler a(c, At(0), 0);
  Feed(a, 0, 100, 0);
  EXPECT_EQ(a.Decide(At(100), 0, 0, kRouted).replicas, 0);
  // The gateway holds a request and the control plane records it at once, 300 ms into the
  // interval: the tiny average still asks for a replica, without waiting for a tick.
  a.Record(Observation{At(100), At(100.3), 0.001, 1});
  ScaleDecision d = a.Decide(At(100.3), 0, 0, kRouted);
  EXPECT_EQ(d.replicas, 1);

  // Even a zero-length observation (no time to average over) counts as demand.
  RevisionAutoscaler b(c, At(0), 0);
  EXPECT_EQ(b.Decide(At(100), 0, 0, kRouted).replicas, 0);
  b.Record(Observation{At(100.5), At(100.5), 1, 1});
  d = b.Decide(At(100.5), 0, 0, kRouted);
  EXPECT_EQ(d.decider_wants, 1);
  EXPECT_EQ(d.replicas, 1);
  EXPECT_THAT(d.reason, HasSubstr("traffic at zero replicas"));
  // Starting: the replica is kept while it comes up.
  EXPECT_EQ(b.Decide(At(102), 1, 0, kRouted).replicas, 1);
}

TEST(KpaDeciderTest, ActivationScaleRaisesAnyNonZeroDecision) {
  KpaConfig c;
  c.activation_scale = 3;
  c.initial_scale = 0;
  RevisionAutoscaler a(c, At(0), 0);
  EXPECT_EQ(a.Decide(At(1), 0, 0, kRouted).replicas, 0);  // zero stays zero
  a.Record(Observation{At(1), At(2), 5, 1});
  EXPECT_EQ(a.Decide(At(2), 0, 0, kRouted).replicas, 3);  // ceil(5 / 70) = 1 → 3
}

TEST(KpaDeciderTest, ExcessBurstCapacity) {
  // floor(ready × total − TBC − panic) = floor(5 × 100 − 211 − 350) = −61.
  RevisionAutoscaler a(KpaConfig{}, At(0), 1);
  Feed(a, 0, 60, 350);
  EXPECT_EQ(a.Decide(At(60), 5, 5, kRouted).excess_burst_capacity, -61);
  // 3 idle replicas with TBC 100: 300 − 100 − 0 = 200.
  KpaConfig c;
  c.target_burst_capacity = 100;
  RevisionAutoscaler b(c, At(0), 1);
  EXPECT_EQ(b.Decide(At(1), 3, 3, kRouted).excess_burst_capacity, 200);
  c.target_burst_capacity = 0;
  RevisionAutoscaler zero(c, At(0), 1);
  EXPECT_EQ(zero.Decide(At(1), 3, 3, kRouted).excess_burst_capacity, 0);
  c.target_burst_capacity = -1;
  RevisionAutoscaler always(c, At(0), 1);
  EXPECT_EQ(always.Decide(At(1), 3, 3, kRouted).excess_burst_capacity, -1);
}

TEST(KpaDeciderTest, ResolvedConfigDrivesTheDecider) {
  ScalingInputs in;
  in.min_replicas = 0;
  in.container_concurrency = 10;  // target 7 per replica
  in.annotations["autoscaling.knative.dev/max-scale"] = "6";
  StatusOr<KpaConfig> c = ResolveConfig(in);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  RevisionAutoscaler a(*c, At(0), 1);
  EXPECT_EQ(a.config().target, 7);
  Feed(a, 0, 60, 35);
  // ceil(35 / 7) = 5 on 5 ready.
  EXPECT_EQ(a.Decide(At(60), 5, 5, kRouted).replicas, 5);
}

}  // namespace
}  // namespace quiver::autoscale
