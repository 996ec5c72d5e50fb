// The delivery machinery shared by the trace exporter and the payload logger: the bounded
// queue, retries with backoff, and the HTTP client against a real local endpoint.
#include <gtest/gtest.h>

#include <thread>

#include "observe/bounded_queue.h"
#include "observe/http_client.h"
#include "observe/test_sink.h"

namespace quiver::observe {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST(BoundedQueue, RefusesAndCountsPushesBeyondItsItemLimit) {
  BoundedQueue<int> q(3);
  for (int i = 0; i < 10; ++i) q.TryPush(i);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.dropped(), 7u);
  std::vector<int> out;
  EXPECT_EQ(q.PopBatch(&out, 1, 10, Clock::now()), 3u);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2}));  // the oldest were kept
  EXPECT_TRUE(q.TryPush(42));
  EXPECT_EQ(q.dropped(), 7u);
}

TEST(BoundedQueue, RefusesPushesBeyondItsByteLimitButTakesOneLargeItemWhenEmpty) {
  BoundedQueue<int> q(100, 1000);
  EXPECT_TRUE(q.TryPush(1, 600));
  EXPECT_FALSE(q.TryPush(2, 600));
  EXPECT_TRUE(q.TryPush(3, 400));
  EXPECT_EQ(q.dropped(), 1u);
  std::vector<int> out;
  q.PopBatch(&out, 1, 10, Clock::now());
  EXPECT_TRUE(q.TryPush(4, 5000));  // empty: even an oversized item is taken
  EXPECT_FALSE(q.TryPush(5, 1));
}

TEST(BoundedQueue, PopBatchWaitsForEnoughItemsOrTheDeadline) {
  BoundedQueue<int> q(10);
  q.TryPush(1);
  std::vector<int> out;
  auto start = Clock::now();
  EXPECT_EQ(q.PopBatch(&out, 5, 5, start + milliseconds(50)), 1u);
  EXPECT_GE(Clock::now() - start, milliseconds(45));
  for (int i = 0; i < 7; ++i) q.TryPush(i);
  out.clear();
  EXPECT_EQ(q.PopBatch(&out, 5, 5, Clock::now() + std::chrono::seconds(10)), 5u);
}

TEST(BoundedQueue, CloseWakesConsumersAndRefusesPushes) {
  BoundedQueue<int> q(10);
  std::thread consumer([&] {
    std::vector<int> out;
    EXPECT_EQ(q.PopBatch(&out, 1, 10, Clock::now() + std::chrono::seconds(30)), 0u);
  });
  std::this_thread::sleep_for(milliseconds(20));
  auto start = Clock::now();
  q.Close();
  consumer.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(q.TryPush(1));
  EXPECT_EQ(q.dropped(), 1u);
  EXPECT_TRUE(q.WaitClosed(Clock::now()));
}

// RetryDelivery with scripted outcomes; `waits` records the backoffs asked for.
struct Script {
  std::vector<StatusOr<int>> outcomes;
  size_t next = 0;
  std::vector<milliseconds> waits;
  StatusOr<int> Attempt() { return outcomes[std::min(next++, outcomes.size() - 1)]; }
};

TEST(RetryDelivery, RetriesTransportErrorsAndServerErrorsWithDoublingBackoff) {
  Script s{{Unavailable("refused"), 503, 429, 200}};
  RetryPolicy policy{.max_retries = 5, .initial_backoff = milliseconds(10),
                     .max_backoff = milliseconds(25)};
  int attempts = 0;
  auto result = RetryDelivery([&] { return s.Attempt(); }, policy,
                              [&](milliseconds d) { s.waits.push_back(d); return true; },
                              &attempts);
  EXPECT_TRUE(IsDelivered(result));
  EXPECT_EQ(attempts, 4);
  EXPECT_EQ(s.waits, (std::vector<milliseconds>{milliseconds(10), milliseconds(20),
                                                milliseconds(25)}));
}

TEST(RetryDelivery, GivesUpAfterMaxRetries) {
  Script s{{503}};
  int attempts = 0;
  auto result = RetryDelivery([&] { return s.Attempt(); }, RetryPolicy{.max_retries = 2},
                              [&](milliseconds) { return true; }, &attempts);
  EXPECT_EQ(attempts, 3);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 503);
}

TEST(RetryDelivery, DoesNotRetryAClientError) {
  Script s{{400, 200}};
  int attempts = 0;
  auto result = RetryDelivery([&] { return s.Attempt(); }, RetryPolicy{},
                              [&](milliseconds) { return true; }, &attempts);
  EXPECT_EQ(attempts, 1);
  EXPECT_FALSE(IsDelivered(result));
  EXPECT_FALSE(IsRetryableDelivery(StatusOr<int>(404)));
  EXPECT_FALSE(IsRetryableDelivery(StatusOr<int>(501)));
  EXPECT_TRUE(IsRetryableDelivery(StatusOr<int>(502)));
}

TEST(RetryDelivery, StopsWhenTheWaitIsInterrupted) {
  Script s{{503, 200}};
  int attempts = 0;
  auto result = RetryDelivery([&] { return s.Attempt(); }, RetryPolicy{},
                              [&](milliseconds) { return false; }, &attempts);
  EXPECT_FALSE(IsDelivered(result));
  EXPECT_EQ(attempts, 1);
}

TEST(HttpClient, PostsHeadersAndBodyAndReturnsTheStatus) {
  TestSink sink;
  sink.AnswerWith({201, 503});
  HttpClient client;
  auto r = client.Post(sink.url("/a"), {{"X-Thing", "1"}}, "hello");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, 201);
  r = client.Post(sink.url("/b"), {}, std::string(100000, 'x'));  // large: no Expect round trip
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 503);
  auto got = sink.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].target, "/a");
  EXPECT_EQ(got[0].headers["x-thing"], "1");
  EXPECT_EQ(got[0].body, "hello");
  EXPECT_EQ(got[1].body.size(), 100000u);
  EXPECT_EQ(got[1].headers.count("expect"), 0u);
}

TEST(HttpClient, ReportsARefusedConnectionAsUnavailable) {
  std::string url;
  {
    TestSink sink;  // a port that was just free and is now closed
    url = sink.url();
  }
  HttpClient client;
  auto r = client.Post(url, {}, "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(IsRetryableDelivery(r));
}

TEST(HttpClient, GivesUpOnASinkThatDoesNotAnswerWithinTheTimeout) {
  TestSink sink;
  sink.Hold();
  HttpClient client(HttpClientOptions{.timeout = milliseconds(5000)});
  auto start = Clock::now();
  auto r = client.Post(sink.url(), {}, "x", milliseconds(200));
  auto took = Clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_GE(took, milliseconds(150));
  EXPECT_LT(took, milliseconds(3000));
}

}  // namespace
}  // namespace quiver::observe
