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

// Work for one model: a scheduler owns it from Submit on, calls Run exactly once (inline or on
// an instance thread) and then destroys it. Run executes on the model and answers the caller.
class ModelJob {
 public:
  virtual ~ModelJob() = default;
  // Whether the job may run on the submitting (I/O) thread.
  virtual bool CanRunInline(const Model& model) const = 0;
  virtual void Run(Model& model, const ModelConfig& config) = 0;
};

// A tensor inference: Run executes the request, keeps the requested outputs and calls Complete
// exactly once.
class InferJob : public ModelJob {
 public:
  virtual void Complete(Status status, InferResponse response) = 0;

  bool CanRunInline(const Model& model) const override { return model.CanRunInline(request); }
  void Run(Model& model, const ModelConfig& config) override;

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
  void Submit(std::unique_ptr<ModelJob> job);
  // The model itself, for answers that need no scheduling (V1 capabilities).
  const Model& model() const { return *model_; }

 private:
  void InstanceLoop();

  const ModelConfig config_;
  const std::unique_ptr<Model> model_;
  ModelMetadata metadata_;
  bool inline_allowed_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<ModelJob>> queue_;  // guarded by mu_
  bool stopping_ = false;                        // guarded by mu_
  std::vector<std::thread> instances_;
};

}  // namespace quiver
