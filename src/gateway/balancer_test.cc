#include "gateway/balancer.h"

#include <gtest/gtest.h>

namespace quiver::gateway {
namespace {

using namespace std::chrono_literals;

EndpointList MakeEndpoints(int n) {
  EndpointList list;
  for (int i = 0; i < n; ++i) {
    list.push_back(std::make_shared<EndpointState>(Endpoint{"10.0.0.1", uint16_t(9000 + i)}));
  }
  return list;
}

RevisionRoute Route(int cc, int queue_depth = 0) {
  RevisionRoute r;
  r.name = "r1";
  r.container_concurrency = cc;
  r.queue_depth = queue_depth;
  return r;
}

class RecordingWaiter : public SlotWaiter {
 public:
  void OnSlot(std::shared_ptr<EndpointState> e) override { slot = std::move(e); }
  void OnRejected(Status s) override { rejected = std::move(s); }
  std::shared_ptr<EndpointState> slot;
  std::optional<Status> rejected;
};

const Clock::time_point kT0 = Clock::time_point() + 1000s;

TEST(BalancerTest, PicksTheEndpointWithTheFewestOutstandingRequests) {
  RevisionState rev("ns/s/predictor/r1", Route(0));
  auto eps = MakeEndpoints(3);
  eps[0]->outstanding = 5;
  eps[1]->outstanding = 1;
  eps[2]->outstanding = 3;
  auto a = rev.Acquire(eps, nullptr, kT0);
  EXPECT_EQ(a, eps[1]);
  EXPECT_EQ(eps[1]->outstanding.load(), 2);
  auto b = rev.Acquire(eps, nullptr, kT0);
  EXPECT_EQ(b, eps[1]);  // 2 < 3 < 5
  auto c = rev.Acquire(eps, nullptr, kT0);
  // Now 5, 3, 3: a tie between 1 and 2, both taken over successive calls.
  EXPECT_TRUE(c == eps[1] || c == eps[2]);
  EXPECT_EQ(rev.in_flight.load(), 3);
  rev.Release(a.get(), kT0);
  EXPECT_EQ(rev.in_flight.load(), 2);
}

TEST(BalancerTest, TiesGoRoundRobin) {
  RevisionState rev("k", Route(0));
  auto eps = MakeEndpoints(3);
  std::vector<int> hits(3);
  for (int i = 0; i < 30; ++i) {
    auto e = rev.Acquire(eps, nullptr, kT0);
    hits[e->endpoint.port - 9000]++;
    rev.Release(e.get(), kT0);  // back to all-zero: every pick is a tie
  }
  EXPECT_EQ(hits, (std::vector<int>{10, 10, 10}));
}

TEST(BalancerTest, SkipsDrainingExcludedAndAvoidsFailedEndpoints) {
  RevisionState rev("k", Route(0));
  auto eps = MakeEndpoints(3);
  eps[0]->draining = true;
  eps[1]->avoid_until_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>((kT0 + 1s).time_since_epoch()).count();
  for (int i = 0; i < 5; ++i) {
    auto e = rev.Acquire(eps, nullptr, kT0);
    EXPECT_EQ(e, eps[2]);
  }
  // With the only healthy one excluded, the avoided one is better than nothing.
  EXPECT_EQ(rev.Acquire(eps, eps[2].get(), kT0), eps[1]);
  // After the avoidance ends it is an ordinary choice again (fewest outstanding: 1 vs 5).
  EXPECT_EQ(rev.Acquire(eps, nullptr, kT0 + 2s), eps[1]);
  eps[2]->draining = true;
  eps[1]->draining = true;
  EXPECT_EQ(rev.Acquire(eps, nullptr, kT0), nullptr);
}

TEST(BalancerTest, ContainerConcurrencyQueuesFifoAndServesWhenASlotFrees) {
  RevisionState rev("ns/s/predictor/r1", Route(1, 2));
  auto eps = std::make_shared<EndpointList>(MakeEndpoints(2));
  rev.SetEndpoints(eps, kT0);
  auto a = rev.Acquire(*eps, nullptr, kT0);
  auto b = rev.Acquire(*eps, nullptr, kT0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(rev.Acquire(*eps, nullptr, kT0), nullptr);  // both at containerConcurrency 1

  auto w1 = std::make_shared<RecordingWaiter>();
  auto w2 = std::make_shared<RecordingWaiter>();
  auto w3 = std::make_shared<RecordingWaiter>();
  EXPECT_TRUE(rev.Enqueue(w1, kT0));
  EXPECT_TRUE(rev.Enqueue(w2, kT0));
  EXPECT_FALSE(rev.Enqueue(w3, kT0));  // queue_depth 2
  EXPECT_EQ(rev.queued.load(), 2);
  EXPECT_EQ(w1->slot, nullptr);

  rev.Release(b.get(), kT0);
  EXPECT_EQ(w1->slot, b);  // the oldest waiter gets the freed slot
  EXPECT_EQ(w2->slot, nullptr);
  EXPECT_EQ(b->outstanding.load(), 1);
  rev.Release(a.get(), kT0);
  EXPECT_EQ(w2->slot, a);
  EXPECT_EQ(rev.queued.load(), 0);
  EXPECT_EQ(rev.in_flight.load(), 2);
}

TEST(BalancerTest, DefaultQueueDepthIsTenTimesContainerConcurrency) {
  EXPECT_EQ(RevisionState("k", Route(3)).queue_limit(), 30u);
  EXPECT_EQ(RevisionState("k", Route(3, 7)).queue_limit(), 7u);
}

TEST(BalancerTest, QueuedRequestsExpireAtTheirDeadline) {
  RevisionState rev("ns/s/predictor/r1", Route(1));
  auto eps = std::make_shared<EndpointList>(MakeEndpoints(1));
  rev.SetEndpoints(eps, kT0);
  auto held = rev.Acquire(*eps, nullptr, kT0);
  auto early = std::make_shared<RecordingWaiter>();
  early->deadline = kT0 + 1s;
  auto late = std::make_shared<RecordingWaiter>();
  late->deadline = kT0 + 5s;
  rev.Enqueue(early, kT0);
  rev.Enqueue(late, kT0);
  rev.ExpireWaiters(kT0 + 999ms);
  EXPECT_FALSE(early->rejected.has_value());
  rev.ExpireWaiters(kT0 + 1s);
  ASSERT_TRUE(early->rejected.has_value());
  EXPECT_EQ(early->rejected->code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(early->rejected->message().find("ns/s/predictor/r1"), std::string::npos);
  EXPECT_FALSE(late->rejected.has_value());
  EXPECT_EQ(rev.queued.load(), 1);
  rev.Release(held.get(), kT0 + 2s);
  EXPECT_EQ(late->slot, held);
}

TEST(BalancerTest, NewEndpointsServeWaitersAndRetiringRejectsThem) {
  RevisionState rev("k", Route(1));
  auto eps = std::make_shared<EndpointList>(MakeEndpoints(1));
  rev.SetEndpoints(eps, kT0);
  auto held = rev.Acquire(*eps, nullptr, kT0);
  auto w1 = std::make_shared<RecordingWaiter>();
  auto w2 = std::make_shared<RecordingWaiter>();
  rev.Enqueue(w1, kT0);
  rev.Enqueue(w2, kT0);
  auto more = std::make_shared<EndpointList>(*eps);
  more->push_back(std::make_shared<EndpointState>(Endpoint{"10.0.0.2", 9000}));
  rev.SetEndpoints(more, kT0);  // a replica became ready
  EXPECT_EQ(w1->slot, (*more)[1]);
  EXPECT_EQ(w2->slot, nullptr);
  rev.Retire();
  ASSERT_TRUE(w2->rejected.has_value());
  EXPECT_EQ(w2->rejected->code(), StatusCode::kUnavailable);
}

TEST(BalancerTest, DrainCallbackRunsWhenTheLastRequestFinishes) {
  RevisionState rev("k", Route(0));
  auto eps = MakeEndpoints(1);
  auto a = rev.Acquire(eps, nullptr, kT0);
  auto b = rev.Acquire(eps, nullptr, kT0);
  int fired = 0;
  a->draining = true;
  a->AddIdleCallback([&] { ++fired; });
  EXPECT_EQ(rev.Acquire(eps, nullptr, kT0), nullptr);  // draining: no new requests
  rev.Release(a.get(), kT0);
  EXPECT_EQ(fired, 0);
  rev.Release(b.get(), kT0);
  EXPECT_EQ(fired, 1);
  // Registered on an idle endpoint: runs at once.
  a->AddIdleCallback([&] { ++fired; });
  EXPECT_EQ(fired, 2);
}

}  // namespace
}  // namespace quiver::gateway
