#include "repository/servable_model.h"

#include <sys/prctl.h>

#include "batching/batch_execution.h"

namespace quiver {

// Wraps a job so that its answer passes through the preserve-ordering stage.
class ServableModel::OrderedJob : public InferJob {
 public:
  OrderedJob(ServableModel* owner, uint64_t seq, std::unique_ptr<InferJob> inner)
      : owner_(owner), seq_(seq), inner_(std::move(inner)) {
    request = std::move(inner_->request);
    CopyTimes(*inner_, this);
  }
  void Complete(Status status, InferResponse response) override {
    inner_->request = std::move(request);
    CopyTimes(*this, inner_.get());
    owner_->Deliver(seq_, inner_.release(), std::move(status), std::move(response));
  }
  // The wrapped job, for a request that never got a place in the order.
  std::unique_ptr<InferJob> Unwrap() {
    inner_->request = std::move(request);
    CopyTimes(*this, inner_.get());
    return std::move(inner_);
  }

 private:
  ServableModel* owner_;
  uint64_t seq_;
  std::unique_ptr<InferJob> inner_;

  static void CopyTimes(const ModelJob& from, ModelJob* to) {
    to->timed = from.timed;
    to->enqueued = from.enqueued;
    to->compute_start = from.compute_start;
    to->infer_start = from.infer_start;
    to->infer_end = from.infer_end;
    to->compute_end = from.compute_end;
  }
};

namespace {

// Items a batch holds: its requests' first dimensions (BatchQueue checked they have one).
uint64_t BatchItems(const std::vector<std::unique_ptr<InferJob>>& batch) {
  uint64_t items = 0;
  for (const auto& job : batch) {
    const auto& inputs = job->request.inputs;
    items += inputs.empty() || inputs.front().shape.empty()
                 ? 1
                 : static_cast<uint64_t>(inputs.front().shape[0]);
  }
  return items;
}

}  // namespace

ServableModel::ServableModel(ModelConfig config, std::unique_ptr<Model> model,
                             std::shared_ptr<observe::ModelMetrics> metrics)
    : config_(std::move(config)),
      model_(std::move(model)),
      metrics_(std::move(metrics)),
      metadata_(model_->metadata()) {
  if (!config_.inputs.empty()) metadata_.inputs = config_.inputs;
  if (!config_.outputs.empty()) metadata_.outputs = config_.outputs;
  // Batching needs a queue, so nothing runs inline then.
  inline_allowed_ = config_.inline_execution.value_or(true) && !config_.batching.enabled();
  if (config_.batching.enabled()) batches_ = std::make_unique<BatchQueue>(config_.batching);
  for (int i = 0; i < config_.instance_count; ++i) {
    instances_.emplace_back([this] { InstanceLoop(); });
  }
}

ServableModel::~ServableModel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : instances_) t.join();
}

void ServableModel::Submit(std::unique_ptr<ModelJob> job) {
  // A frontend that traces the request may have stamped it already.
  const bool stamp = metrics_ && !job->timed;
  if (stamp) job->timed = true;
  if (inline_allowed_ && job->CanRunInline(*model_)) {
    // Run stamps `enqueued` with the start of its execution: no queue, no second clock read.
    job->Run(*model_, config_);
    // Triton counts one inference per request for a model that does not batch.
    if (metrics_) metrics_->RecordExecution(1);
    return;
  }
  if (stamp) job->enqueued = std::chrono::steady_clock::now();
  InferJob* tensor_job = batches_ ? job->AsInferJob() : nullptr;
  if (tensor_job == nullptr) {
    // Counted before the push, so that the instance's decrement never comes first.
    if (metrics_) metrics_->AddPending(1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_one();
    return;
  }
  std::unique_ptr<InferJob> infer(static_cast<InferJob*>(job.release()));
  Status status;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (config_.batching.preserve_ordering) {
      std::unique_ptr<InferJob> ordered =
          std::make_unique<OrderedJob>(this, next_seq_, std::move(infer));
      status = batches_->Enqueue(ordered, BatchQueue::Clock::now());
      if (status.ok()) {
        ++next_seq_;
      } else {
        infer = static_cast<OrderedJob*>(ordered.get())->Unwrap();
      }
    } else {
      status = batches_->Enqueue(infer, BatchQueue::Clock::now());
    }
    if (status.ok() && metrics_) metrics_->AddPending(1);
    if (status.ok()) wake = batches_->EnqueueNeedsWake(waiting_until_);
  }
  if (!status.ok()) {
    // Rejected at once (queue full, too many items, bad priority): answered here.
    infer->Complete(std::move(status), InferResponse{});
    return;
  }
  if (wake) cv_.notify_one();
}

void ServableModel::Deliver(uint64_t seq, InferJob* raw, Status status, InferResponse response) {
  std::unique_ptr<InferJob> job(raw);
  std::lock_guard<std::mutex> lock(order_mu_);
  finished_[seq] = Finished{std::move(job), std::move(status), std::move(response)};
  while (!finished_.empty() && finished_.begin()->first == next_delivery_) {
    Finished f = std::move(finished_.begin()->second);
    finished_.erase(finished_.begin());
    ++next_delivery_;
    f.job->Complete(std::move(f.status), std::move(f.response));
  }
}

void ServableModel::InstanceLoop() {
  // A delayed batch leaves when its timed wait ends; the default 50 us of timer slack would be
  // added to every one of them (measured: dispatch p50 60 us after the deadline). 1 us instead.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!queue_.empty()) {
      std::unique_ptr<ModelJob> job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      if (metrics_) metrics_->AddPending(-1);
      job->Run(*model_, config_);
      if (metrics_) metrics_->RecordExecution(1);
      lock.lock();
      continue;
    }
    if (batches_) {
      auto now = BatchQueue::Clock::now();
      auto expired = batches_->TakeExpired(now);
      if (!expired.empty()) {
        lock.unlock();
        if (metrics_) metrics_->AddPending(-static_cast<int64_t>(expired.size()));
        for (auto& job : expired) {
          job->Complete(Unavailable("request to model '" + config_.name +
                                    "' timed out in the queue"),
                        InferResponse{});
        }
        lock.lock();
        continue;
      }
      BatchQueue::Clock::time_point wake;
      auto batch = batches_->NextBatch(now, &wake, /*flush=*/stopping_);
      if (!batch.empty()) {
        lock.unlock();
        uint64_t items = 0;
        if (metrics_) {
          metrics_->AddPending(-static_cast<int64_t>(batch.size()));
          items = BatchItems(batch);
        }
        ExecuteBatch(batch, *model_, config_);
        if (metrics_) metrics_->RecordExecution(items);
        lock.lock();
        continue;
      }
      if (stopping_ && batches_->empty()) return;
      waiting_until_ = wake;
      if (wake != BatchQueue::Clock::time_point::max()) {
        cv_.wait_until(lock, wake);
        continue;
      }
    } else if (stopping_) {
      return;
    }
    cv_.wait(lock);
  }
}

}  // namespace quiver
