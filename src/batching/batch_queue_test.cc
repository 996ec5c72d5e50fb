#include "batching/batch_queue.h"

#include <gtest/gtest.h>

#include <cstring>

#include "batching/batch_execution.h"

namespace quiver {
namespace {

using Clock = BatchQueue::Clock;
using std::chrono::microseconds;

// A job that records how it was completed.
struct Outcome {
  bool done = false;
  Status status;
  InferResponse response;
};

class RecordingJob : public InferJob {
 public:
  explicit RecordingJob(Outcome* out) : out_(out) {}
  void Complete(Status status, InferResponse response) override {
    out_->done = true;
    out_->status = std::move(status);
    out_->response = std::move(response);
  }

 private:
  Outcome* out_;
};

std::unique_ptr<InferJob> Job(Outcome* out, int64_t rows, int64_t cols = 2, int tag = 0,
                              int64_t priority = 0) {
  auto job = std::make_unique<RecordingJob>(out);
  Tensor t{.name = "INPUT0", .datatype = DataType::kFp32, .shape = {rows, cols}};
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(tag * 1000 + i);
  t.data = TensorData::CopyOf(v.data(), v.size() * 4);
  job->request.model_name = "m";
  job->request.id = "job" + std::to_string(tag);
  job->request.inputs.push_back(t);
  if (priority) job->request.parameters.Set("priority", priority);
  return job;
}

BatchingConfig Config(int64_t max, int64_t delay_us) {
  BatchingConfig c;
  c.max_batch_size = max;
  c.max_queue_delay = microseconds(delay_us);
  return c;
}

std::vector<std::string> Ids(const std::vector<std::unique_ptr<InferJob>>& batch) {
  std::vector<std::string> ids;
  for (const auto& j : batch) ids.push_back(j->request.id);
  return ids;
}

class BatchQueueTest : public ::testing::Test {
 protected:
  Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);
  Clock::time_point wake;
  Outcome o[8];
};

TEST_F(BatchQueueTest, DispatchesAtMaxSizeWithoutWaiting) {
  BatchQueue q(Config(4, 10'000));
  for (int i = 0; i < 3; ++i) {
    auto j = Job(&o[i], i == 0 ? 2 : 1, 2, i);
    ASSERT_TRUE(q.Enqueue(j, t0).ok());
  }
  // 4 items = max_batch_size: out at once, although the delay has not passed.
  auto batch = q.NextBatch(t0, &wake);
  EXPECT_EQ(Ids(batch), (std::vector<std::string>{"job0", "job1", "job2"}));
  EXPECT_TRUE(q.empty());
}

TEST_F(BatchQueueTest, WaitsForTheDelayThenDispatchesWhatIsThere) {
  BatchQueue q(Config(8, 500));
  auto a = Job(&o[0], 1, 2, 0);
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  auto b = Job(&o[1], 2, 2, 1);
  ASSERT_TRUE(q.Enqueue(b, t0 + microseconds(100)).ok());
  EXPECT_TRUE(q.NextBatch(t0 + microseconds(499), &wake).empty());
  EXPECT_EQ(wake, t0 + microseconds(500));  // the oldest request's delay
  auto batch = q.NextBatch(t0 + microseconds(500), &wake);
  EXPECT_EQ(Ids(batch), (std::vector<std::string>{"job0", "job1"}));
}

TEST_F(BatchQueueTest, ZeroDelayDispatchesAtOnce) {
  BatchQueue q(Config(8, 0));
  auto a = Job(&o[0], 1);
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  EXPECT_EQ(q.NextBatch(t0, &wake).size(), 1u);
}

TEST_F(BatchQueueTest, PreferredSizeDispatchesBeforeTheDelay) {
  BatchingConfig c = Config(16, 1'000'000);
  c.preferred_batch_sizes = {4, 8};
  BatchQueue q(c);
  for (int i = 0; i < 3; ++i) {
    auto j = Job(&o[i], 2, 2, i);
    ASSERT_TRUE(q.Enqueue(j, t0).ok());
  }
  // 6 items pending: the largest preferred size reached is 4 -> two requests go.
  auto batch = q.NextBatch(t0, &wake);
  EXPECT_EQ(Ids(batch), (std::vector<std::string>{"job0", "job1"}));
  // 2 left, below every preferred size: wait.
  EXPECT_TRUE(q.NextBatch(t0, &wake).empty());
  EXPECT_EQ(wake, t0 + microseconds(1'000'000));
}

TEST_F(BatchQueueTest, OnlyMatchingShapesShareABatch) {
  BatchQueue q(Config(8, 0));
  auto a = Job(&o[0], 1, 2, 0);
  auto b = Job(&o[1], 1, 3, 1);  // another row width
  auto c = Job(&o[2], 1, 2, 2);
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  ASSERT_TRUE(q.Enqueue(b, t0).ok());
  ASSERT_TRUE(q.Enqueue(c, t0).ok());
  EXPECT_EQ(Ids(q.NextBatch(t0, &wake)), (std::vector<std::string>{"job0", "job2"}));
  EXPECT_EQ(Ids(q.NextBatch(t0, &wake)), (std::vector<std::string>{"job1"}));
}

TEST_F(BatchQueueTest, KeepsArrivalOrderAndNeverSplitsARequest) {
  BatchQueue q(Config(4, 0));
  auto a = Job(&o[0], 3, 2, 0);
  auto b = Job(&o[1], 2, 2, 1);  // does not fit beside a
  auto c = Job(&o[2], 1, 2, 2);
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  ASSERT_TRUE(q.Enqueue(b, t0).ok());
  ASSERT_TRUE(q.Enqueue(c, t0).ok());
  EXPECT_EQ(Ids(q.NextBatch(t0, &wake)), (std::vector<std::string>{"job0"}));
  EXPECT_EQ(Ids(q.NextBatch(t0, &wake)), (std::vector<std::string>{"job1", "job2"}));
}

TEST_F(BatchQueueTest, HigherPriorityGoesFirst) {
  BatchingConfig c = Config(2, 0);
  c.priority_levels = 2;
  c.default_priority_level = 2;
  BatchQueue q(c);
  auto low1 = Job(&o[0], 1, 2, 0);
  auto low2 = Job(&o[1], 1, 2, 1);
  auto high = Job(&o[2], 1, 2, 2, /*priority=*/1);
  ASSERT_TRUE(q.Enqueue(low1, t0).ok());
  ASSERT_TRUE(q.Enqueue(low2, t0).ok());
  ASSERT_TRUE(q.Enqueue(high, t0 + microseconds(5)).ok());
  EXPECT_EQ(Ids(q.NextBatch(t0, &wake)), (std::vector<std::string>{"job2", "job0"}));
  auto bad = Job(&o[3], 1, 2, 3, /*priority=*/3);
  Status s = q.Enqueue(bad, t0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad, nullptr);  // left with the caller
}

TEST_F(BatchQueueTest, FullQueueRejectsAtOnce) {
  BatchingConfig c = Config(8, 1000);
  c.max_queue_size = 2;
  BatchQueue q(c);
  auto a = Job(&o[0], 1), b = Job(&o[1], 1), d = Job(&o[2], 1);
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  ASSERT_TRUE(q.Enqueue(b, t0).ok());
  Status s = q.Enqueue(d, t0);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("is full"), std::string::npos);
}

TEST_F(BatchQueueTest, TooManyItemsOrNoBatchDimensionIsABadRequest) {
  BatchQueue q(Config(4, 0));
  auto big = Job(&o[0], 5);
  EXPECT_EQ(q.Enqueue(big, t0).message(),
            "the request has 5 items, more than the model's max_batch_size of 4");
  auto scalar = std::make_unique<RecordingJob>(&o[1]);
  scalar->request.inputs.push_back(Tensor{.name = "x", .datatype = DataType::kFp32, .shape = {}});
  std::unique_ptr<InferJob> s = std::move(scalar);
  EXPECT_EQ(q.Enqueue(s, t0).code(), StatusCode::kInvalidArgument);
}

TEST_F(BatchQueueTest, TimeoutsRejectOrDelay) {
  BatchingConfig c = Config(8, 10'000);
  c.default_timeout = microseconds(300);
  c.allow_timeout_override = true;
  BatchQueue q(c);
  auto a = Job(&o[0], 1, 2, 0);
  auto b = Job(&o[1], 1, 2, 1);
  b->request.parameters.Set("timeout", int64_t{100});  // shortens the default
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  ASSERT_TRUE(q.Enqueue(b, t0).ok());
  EXPECT_TRUE(q.NextBatch(t0, &wake).empty());
  EXPECT_EQ(wake, t0 + microseconds(100));  // wakes for the earliest deadline
  auto expired = q.TakeExpired(t0 + microseconds(150));
  EXPECT_EQ(Ids(expired), (std::vector<std::string>{"job1"}));
  expired = q.TakeExpired(t0 + microseconds(300));
  EXPECT_EQ(Ids(expired), (std::vector<std::string>{"job0"}));

  c.timeout_action = BatchingConfig::TimeoutAction::kDelay;
  BatchQueue dq(c);
  auto d = Job(&o[2], 1, 2, 2);
  ASSERT_TRUE(dq.Enqueue(d, t0).ok());
  EXPECT_TRUE(dq.TakeExpired(t0 + microseconds(400)).empty());
  EXPECT_EQ(dq.size(), 1u);  // still queued
}

TEST_F(BatchQueueTest, FlushDispatchesWithoutWaiting) {
  BatchQueue q(Config(8, 1'000'000));
  auto a = Job(&o[0], 1);
  ASSERT_TRUE(q.Enqueue(a, t0).ok());
  EXPECT_EQ(q.NextBatch(t0, &wake, /*flush=*/true).size(), 1u);
}

// A model that doubles FP32 input rows, or fails, to test execution and splitting.
class DoubleModel : public Model {
 public:
  explicit DoubleModel(bool fail) : fail_(fail) {}
  const ModelMetadata& metadata() const override { return md_; }
  Status Execute(const InferRequest& r, InferResponse* out) override {
    ++executions;
    if (fail_) return Internal("boom");
    const Tensor& in = r.inputs[0];
    size_t n = static_cast<size_t>(in.element_count());
    TensorData d = TensorData::Allocate(n * 4);
    for (size_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, in.data.data() + 4 * i, 4);
      v *= 2;
      std::memcpy(d.mutable_data() + 4 * i, &v, 4);
    }
    out->outputs.push_back({"OUTPUT0", DataType::kFp32, in.shape, {}, std::move(d)});
    return Status::Ok();
  }
  int executions = 0;

 private:
  bool fail_;
  ModelMetadata md_;
};

TEST_F(BatchQueueTest, ExecuteBatchSplitsOutputsPerRequest) {
  DoubleModel model(false);
  ModelConfig config;
  config.name = "m";
  std::vector<std::unique_ptr<InferJob>> jobs;
  jobs.push_back(Job(&o[0], 1, 2, 1));
  jobs.push_back(Job(&o[1], 3, 2, 2));
  ExecuteBatch(jobs, model, config);
  EXPECT_EQ(model.executions, 1);
  ASSERT_TRUE(o[0].status.ok());
  ASSERT_TRUE(o[1].status.ok());
  EXPECT_EQ(o[0].response.id, "job1");
  EXPECT_EQ(o[0].response.outputs[0].shape, (Shape{1, 2}));
  EXPECT_EQ(o[1].response.outputs[0].shape, (Shape{3, 2}));
  EXPECT_EQ(o[0].response.outputs[0].values<float>()[1], 2 * 1001.0f);
  EXPECT_EQ(o[1].response.outputs[0].values<float>()[5], 2 * 2005.0f);
}

TEST_F(BatchQueueTest, ExecutionErrorReachesEveryRequest) {
  DoubleModel model(true);
  ModelConfig config;
  std::vector<std::unique_ptr<InferJob>> jobs;
  jobs.push_back(Job(&o[0], 1));
  jobs.push_back(Job(&o[1], 1));
  ExecuteBatch(jobs, model, config);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(o[i].done);
    EXPECT_EQ(o[i].status.message(), "boom");
  }
}

// Waking the instance on every enqueue costs a context switch per request; it is woken only
// when what it waits for has changed.
TEST(BatchQueueWakeTest, EnqueueWakesTheInstanceOnlyWhenItsWaitIsWrong) {
  BatchingConfig config = Config(8, 500);
  config.preferred_batch_sizes = {4};
  config.allow_timeout_override = true;
  BatchQueue q(config);
  Clock::time_point t0{};
  Clock::time_point wait_until = t0 + microseconds(500);  // the head's delay
  Outcome o[8];
  auto enqueue = [&](int i, int64_t rows, int64_t timeout_us = 0) {
    auto job = Job(&o[i], rows, 2, i);
    if (timeout_us) job->request.parameters.Set("timeout", timeout_us);
    ASSERT_TRUE(q.Enqueue(job, t0 + microseconds(i)).ok());
  };
  enqueue(0, 1);
  EXPECT_TRUE(q.EnqueueNeedsWake(Clock::time_point::max())) << "first request: set the timer";
  enqueue(1, 1);
  EXPECT_FALSE(q.EnqueueNeedsWake(wait_until)) << "2 items, the head's timer still holds";
  enqueue(2, 1, /*timeout_us=*/100);
  EXPECT_TRUE(q.EnqueueNeedsWake(wait_until)) << "its timeout ends before the timer";
  EXPECT_FALSE(q.EnqueueNeedsWake(t0 + microseconds(50)));
  enqueue(3, 1);
  EXPECT_TRUE(q.EnqueueNeedsWake(wait_until)) << "4 items: the preferred size can leave";

  BatchQueue no_delay(Config(8, 0));
  auto job = Job(&o[4], 1);
  ASSERT_TRUE(no_delay.Enqueue(job, t0).ok());
  auto job2 = Job(&o[5], 1);
  ASSERT_TRUE(no_delay.Enqueue(job2, t0).ok());
  EXPECT_TRUE(no_delay.EnqueueNeedsWake(t0 + microseconds(10))) << "no delay: always";

  BatchQueue full(Config(2, 500));
  auto a = Job(&o[6], 1);
  auto b = Job(&o[7], 1);
  ASSERT_TRUE(full.Enqueue(a, t0).ok());
  ASSERT_TRUE(full.Enqueue(b, t0).ok());
  EXPECT_TRUE(full.EnqueueNeedsWake(t0 + microseconds(500))) << "max_batch_size reached";
  Clock::time_point wake;
  EXPECT_EQ(full.NextBatch(t0, &wake).size(), 2u);
  auto c = Job(&o[6], 1);
  ASSERT_TRUE(full.Enqueue(c, t0).ok());
  EXPECT_TRUE(full.EnqueueNeedsWake(Clock::time_point::max())) << "taken items are not counted";
}

}  // namespace
}  // namespace quiver
