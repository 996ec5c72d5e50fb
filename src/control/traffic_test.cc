#include "control/traffic.h"

#include <gtest/gtest.h>

namespace quiver::control {
namespace {

// The latest created revision is the latest ready one unless given.
RolloutPlan Plan(std::string ready, std::string rolled, std::string prev,
                 std::optional<int> canary, bool tags = false, std::string created = "") {
  if (created.empty()) created = ready;
  return PlanRollout(
      {std::move(ready), std::move(created), std::move(rolled), std::move(prev), canary, tags});
}

void ExpectTarget(const TrafficTarget& t, const std::string& rev, int percent,
                  const std::string& tag, bool latest) {
  EXPECT_EQ(t.revision, rev);
  EXPECT_EQ(t.percent, percent);
  EXPECT_EQ(t.tag, tag);
  EXPECT_EQ(t.latest_revision, latest);
}

TEST(PlanRolloutTest, NothingReadyRoutesNothing) {
  auto p = Plan("", "", "", std::nullopt);
  EXPECT_TRUE(p.traffic.empty());
  EXPECT_EQ(p.rolled_out, "");
}

TEST(PlanRolloutTest, FirstRevisionGetsEverythingAndIsRolledOut) {
  auto p = Plan("r1", "", "", std::nullopt);
  ASSERT_EQ(p.traffic.size(), 1u);
  ExpectTarget(p.traffic[0], "r1", 100, "", true);
  EXPECT_EQ(p.rolled_out, "r1");
  EXPECT_EQ(p.previous, "");
  // canaryTrafficPercent on the very first revision: KServe routes 100% at first (nothing is
  // rolled out), records r1 as rolled out, and then splits between the latest target and prev,
  // both on r1 (the gateway merges them into one route).
  auto c = Plan("r1", "", "", 10);
  ASSERT_EQ(c.traffic.size(), 2u);
  ExpectTarget(c.traffic[0], "r1", 10, "", true);
  ExpectTarget(c.traffic[1], "r1", 90, "prev", false);
  EXPECT_EQ(c.rolled_out, "r1");
}

TEST(PlanRolloutTest, CanarySplitsBetweenLatestReadyAndRolledOut) {
  auto p = Plan("r2", "r1", "", 10, /*tags=*/true);
  ASSERT_EQ(p.traffic.size(), 2u);
  ExpectTarget(p.traffic[0], "r2", 10, "latest", true);
  ExpectTarget(p.traffic[1], "r1", 90, "prev", false);
  EXPECT_EQ(p.rolled_out, "r1");  // a canary is not a rollout
  // Without tag routing the latest target has no tag; prev is tagged regardless (KServe).
  auto q = Plan("r2", "r1", "", 10);
  ExpectTarget(q.traffic[0], "r2", 10, "", true);
  ExpectTarget(q.traffic[1], "r1", 90, "prev", false);
}

TEST(PlanRolloutTest, CanaryWhoseNewRevisionIsNotReadyKeepsEverythingOnTheOldOne) {
  // The new revision r2 is not ready: latest ready is still r1, which is also rolled out.
  auto p = Plan("r1", "r1", "", 10, false, "r2");
  ASSERT_EQ(p.traffic.size(), 2u);
  ExpectTarget(p.traffic[0], "r1", 10, "", true);
  ExpectTarget(p.traffic[1], "r1", 90, "prev", false);
  EXPECT_EQ(p.rolled_out, "r1");
}

TEST(PlanRolloutTest, PromoteByRemovingTheCanaryPercent) {
  auto p = Plan("r2", "r1", "", std::nullopt, true);
  ASSERT_EQ(p.traffic.size(), 1u);
  ExpectTarget(p.traffic[0], "r2", 100, "latest", true);
  EXPECT_EQ(p.rolled_out, "r2");
  EXPECT_EQ(p.previous, "r1");
  // 100 also promotes.
  auto h = Plan("r2", "r1", "", 100);
  ASSERT_EQ(h.traffic.size(), 1u);
  EXPECT_EQ(h.rolled_out, "r2");
  EXPECT_EQ(h.previous, "r1");
}

TEST(PlanRolloutTest, ZeroRollsBackToThePreviousRolledOutRevision) {
  // After a promote r2 is rolled out and r1 previous; canaryTrafficPercent: 0 pins r1.
  auto p = Plan("r2", "r2", "r1", 0, true);
  ASSERT_EQ(p.traffic.size(), 2u);
  ExpectTarget(p.traffic[0], "r2", 0, "latest", true);
  ExpectTarget(p.traffic[1], "r1", 100, "prev", false);
  EXPECT_EQ(p.rolled_out, "r1");
  EXPECT_EQ(p.previous, "r1");
  // The next reconcile is stable.
  auto again = Plan("r2", p.rolled_out, p.previous, 0, true);
  EXPECT_EQ(again.rolled_out, "r1");
  ExpectTarget(again.traffic[1], "r1", 100, "prev", false);
  // Removing the field again promotes r2.
  auto promote = Plan("r2", again.rolled_out, again.previous, std::nullopt);
  ASSERT_EQ(promote.traffic.size(), 1u);
  ExpectTarget(promote.traffic[0], "r2", 100, "", true);
  EXPECT_EQ(promote.rolled_out, "r2");
  EXPECT_EQ(promote.previous, "r1");
}

TEST(PlanRolloutTest, ASecondCanaryWhileItsRevisionStartsIsNotARollback) {
  // r2 rolled out (r1 before it); r3 is applied with a 10% canary and is not ready yet: the
  // traffic stays on r2, and r1 is not brought back.
  auto p = Plan("r2", "r2", "r1", 10, false, "r3");
  ASSERT_EQ(p.traffic.size(), 2u);
  ExpectTarget(p.traffic[0], "r2", 10, "", true);
  ExpectTarget(p.traffic[1], "r2", 90, "prev", false);
  EXPECT_EQ(p.rolled_out, "r2");
  EXPECT_EQ(p.previous, "r1");
  // Once r3 is ready, the split is against r2.
  auto q = Plan("r3", p.rolled_out, p.previous, 10, false, "r3");
  ExpectTarget(q.traffic[0], "r3", 10, "", true);
  ExpectTarget(q.traffic[1], "r2", 90, "prev", false);
  EXPECT_EQ(q.rolled_out, "r2");
}

TEST(PlanRolloutTest, ANewCanaryAfterARolloutSplitsAgainstTheRolledOutRevision) {
  auto p = Plan("r3", "r2", "r1", 25);
  ExpectTarget(p.traffic[0], "r3", 25, "", true);
  ExpectTarget(p.traffic[1], "r2", 75, "prev", false);
  EXPECT_EQ(p.rolled_out, "r2");
  EXPECT_EQ(p.previous, "r1");
}

}  // namespace
}  // namespace quiver::control
