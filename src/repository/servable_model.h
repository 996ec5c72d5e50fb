// ServableModel: one loaded model and its instances, the thing requests are scheduled onto.
// Each of `instance_count` instance threads takes jobs from one queue; a request the model
// calls short (Model::CanRunInline) runs on the caller's thread instead, saving a hand-off.
// Thread-safe. Destruction runs what is queued, then joins the instance threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/model.h"

namespace quiver {

// One request on its way through a scheduler. The scheduler owns the job from Submit on, calls
// Complete exactly once (on any thread) and then destroys it.
class InferJob {
 public:
  virtual ~InferJob() = default;
  virtual void Complete(Status status, InferResponse response) = 0;
  InferRequest request;
};

class ServableModel {
 public:
  ServableModel(ModelConfig config, std::unique_ptr<Model> model);
  ~ServableModel();

  const ModelConfig& config() const { return config_; }
  // The model's metadata, with inputs/outputs declared in config.yaml taking precedence.
  const ModelMetadata& metadata() const { return metadata_; }

  // Runs the job inline or queues it for an instance; never blocks on the model when queued.
  void Submit(std::unique_ptr<InferJob> job);

 private:
  void Execute(std::unique_ptr<InferJob> job);
  void InstanceLoop();

  const ModelConfig config_;
  const std::unique_ptr<Model> model_;
  ModelMetadata metadata_;
  bool inline_allowed_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<InferJob>> queue_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  std::vector<std::thread> instances_;
};

}  // namespace quiver
