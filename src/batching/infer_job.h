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

  // Stage times (steady clock), taken only when `timed` is set: a scheduler that reports
  // metrics sets it and `enqueued` on Submit; execution (Run, ExecuteBatch) fills the rest.
  // A stage the job did not reach stays at the epoch.
  using TimePoint = std::chrono::steady_clock::time_point;
  bool timed = false;
  TimePoint enqueued;       // handed to the scheduler (for a job run inline: = compute_start)
  TimePoint compute_start;  // its execution began (a batch's merge included)
  TimePoint infer_start;    // Model::Execute began
  TimePoint infer_end;      // Model::Execute returned
  TimePoint compute_end;    // its outputs were ready (split off the batch)

  // Stamps the start of a job's own execution (Run): compute_start and infer_start, and
  // `enqueued` too when the scheduler ran the job inline without stamping it (one clock read
  // instead of two on the path short requests take).
  void StampComputeStart() {
    compute_start = infer_start = std::chrono::steady_clock::now();
    if (enqueued == TimePoint{}) enqueued = compute_start;
  }
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
};

}  // namespace quiver
