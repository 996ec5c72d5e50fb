#include "storage/retry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace quiver::storage {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RetryTest, ClassifiesHttpStatuses) {
  EXPECT_EQ(HttpFailure(404, "GET u", "").code(), StatusCode::kNotFound);
  EXPECT_EQ(HttpFailure(403, "GET u", "AccessDenied").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(HttpFailure(401, "GET u", "").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(HttpFailure(400, "GET u", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpFailure(501, "GET u", "").code(), StatusCode::kUnimplemented);
  for (int transient : {408, 429, 500, 502, 503, 504}) {
    EXPECT_TRUE(IsRetryable(HttpFailure(transient, "GET u", ""))) << transient;
  }
  for (int final_status : {400, 401, 403, 404, 410, 501}) {
    EXPECT_FALSE(IsRetryable(HttpFailure(final_status, "GET u", ""))) << final_status;
  }
  Status s = HttpFailure(403, "GET http://h/m.bin", "InvalidAccessKeyId: unknown key");
  EXPECT_THAT(s.message(), HasSubstr("GET http://h/m.bin: HTTP 403 (InvalidAccessKeyId"));
  EXPECT_TRUE(IsRetryable(DeadlineExceeded("timeout")));
  EXPECT_FALSE(IsRetryable(InvalidArgument("corrupt archive")));
}

TEST(RetryTest, BackoffDoublesUpToTheMaximum) {
  RetryPolicy p{6, milliseconds(100), milliseconds(500)};
  EXPECT_EQ(BackoffAfter(p, 1), milliseconds(100));
  EXPECT_EQ(BackoffAfter(p, 2), milliseconds(200));
  EXPECT_EQ(BackoffAfter(p, 3), milliseconds(400));
  EXPECT_EQ(BackoffAfter(p, 4), milliseconds(500));
  EXPECT_EQ(BackoffAfter(p, 40), milliseconds(500));
}

TEST(RetryTest, RetriesTransientFailuresThenSucceeds) {
  std::vector<milliseconds> slept;
  int calls = 0;
  Status s = RunWithRetries(
      RetryPolicy{4, milliseconds(10), milliseconds(1000)},
      [&](milliseconds d) { slept.push_back(d); }, nullptr,
      [&] { return ++calls < 3 ? Unavailable("503") : Status::Ok(); });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
  EXPECT_THAT(slept, ElementsAre(milliseconds(10), milliseconds(20)));
}

TEST(RetryTest, PermanentFailuresAreNotRetried) {
  int calls = 0;
  std::vector<milliseconds> slept;
  Status s = RunWithRetries(
      RetryPolicy{}, [&](milliseconds d) { slept.push_back(d); }, nullptr,
      [&] {
        ++calls;
        return NotFound("404");
      });
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(slept.empty());
}

TEST(RetryTest, GivesUpAfterMaxAttemptsWithTheLastError) {
  int calls = 0;
  Status s = RunWithRetries(
      RetryPolicy{3, milliseconds(1), milliseconds(1)}, [](milliseconds) {}, nullptr,
      [&] { return Unavailable("attempt " + std::to_string(++calls)); });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(s.message(), "attempt 3");
}

TEST(RetryTest, CancelStopsRetrying) {
  std::atomic<bool> cancel{false};
  int calls = 0;
  Status s = RunWithRetries(
      RetryPolicy{10, milliseconds(1), milliseconds(1)}, [&](milliseconds) { cancel = true; },
      &cancel,
      [&] {
        ++calls;
        return Unavailable("down");
      });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace quiver::storage
