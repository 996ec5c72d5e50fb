// Jobs: the unit a scheduler moves from the frontends to a model. A frontend makes a job that
// knows how to answer its client; the scheduler decides when and where it runs.
// Ownership: a scheduler owns a job from Submit on, calls Run (or, for tensor jobs it batches,
// Complete) exactly once and then destroys it.
#pragma once

#include <chrono>
#include <cstdint>

#include "runtime/model.h"

namespace quiver {

class InferJob;

class ModelJob {
 public:
  virtual ~ModelJob() = default;
  // Whether the job may run on the submitting (I/O) thread.
  virtual bool CanRunInline(const Model& model) const = 0;
  virtual void Run(Model& model, const ModelConfig& config) = 0;
  // Tensor jobs can be batched with others; other jobs (V1 JSON) run alone.
  virtual InferJob* AsInferJob() { return nullptr; }
};

// A tensor inference. Run executes the request alone, keeps the requested outputs and calls
// Complete; a batcher instead executes several requests at once and calls Complete on each.
class InferJob : public ModelJob {
 public:
  virtual void Complete(Status status, InferResponse response) = 0;

  bool CanRunInline(const Model& model) const override { return model.CanRunInline(request); }
  void Run(Model& model, const ModelConfig& config) override;
  InferJob* AsInferJob() override { return this; }

  InferRequest request;
  // Set by the scheduler: when the job was queued, for queue-time accounting.
  std::chrono::steady_clock::time_point enqueued;
};

}  // namespace quiver
