// ServableModel: one loaded model and its instances, the thing requests are scheduled onto.
// Each of `instance_count` instance threads takes work from the model's queue. Without
// batching, a request the model calls short (Model::CanRunInline) runs on the caller's thread
// instead, saving a hand-off. With batching (config.batching), tensor requests go through a
// BatchQueue and an instance runs a whole batch at once; with preserve_ordering, answers leave
// in the order requests arrived. Thread-safe. Destruction runs what is queued, then joins the
// instance threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "batching/batch_queue.h"
#include "batching/infer_job.h"
#include "observe/model_metrics.h"
#include "runtime/model.h"

namespace quiver {

class ServableModel {
 public:
  // `metrics`, when set, receives executions and queue lengths, and jobs get stage times.
  ServableModel(ModelConfig config, std::unique_ptr<Model> model,
                std::shared_ptr<observe::ModelMetrics> metrics = nullptr);
  ~ServableModel();

  const ModelConfig& config() const { return config_; }
  // The model's metadata, with inputs/outputs declared in config.yaml taking precedence.
  const ModelMetadata& metadata() const { return metadata_; }

  // Runs the job inline or queues it for an instance; never blocks on the model when queued.
  void Submit(std::unique_ptr<ModelJob> job);
  // The model itself, for answers that need no scheduling (V1 capabilities).
  const Model& model() const { return *model_; }
  // This model version's metrics, for the frontends to report requests; null when metrics are
  // off. Valid as long as this ServableModel.
  observe::ModelMetrics* metrics() const { return metrics_.get(); }

 private:
  class OrderedJob;
  void InstanceLoop();
  // Preserve-ordering: hands a finished answer on once every earlier one has left.
  void Deliver(uint64_t seq, InferJob* job, Status status, InferResponse response);

  const ModelConfig config_;
  const std::unique_ptr<Model> model_;
  const std::shared_ptr<observe::ModelMetrics> metrics_;
  ModelMetadata metadata_;
  bool inline_allowed_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<ModelJob>> queue_;  // guarded by mu_: jobs run one at a time
  std::unique_ptr<BatchQueue> batches_;          // guarded by mu_: set when batching
  bool stopping_ = false;                        // guarded by mu_
  // When the last instance to wait for the batch queue's next event will wake on its own
  // (time_point::max() for an untimed wait); guarded by mu_. Submit wakes it only when needed.
  std::chrono::steady_clock::time_point waiting_until_ = std::chrono::steady_clock::time_point::max();
  uint64_t next_seq_ = 0;                        // guarded by mu_

  struct Finished {
    std::unique_ptr<InferJob> job;
    Status status;
    InferResponse response;
  };
  std::mutex order_mu_;
  uint64_t next_delivery_ = 0;             // guarded by order_mu_
  std::map<uint64_t, Finished> finished_;  // guarded by order_mu_: waiting for earlier ones

  std::vector<std::thread> instances_;
};

}  // namespace quiver
