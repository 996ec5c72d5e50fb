// The metrics side of `quiver serve`'s frontends: RequestMeter reports one inference request to
// its model's metrics (REST v2, V1 and gRPC share it), and the model-state collector exposes
// what the repository knows of each model.
#pragma once

#include <chrono>

#include "batching/infer_job.h"
#include "observe/metrics_registry.h"
#include "observe/model_metrics.h"
#include "repository/model_repository.h"

namespace quiver {

// Times one request and reports its outcome once. Made by the frontend when the request has
// arrived, carried by the job that answers it. With null metrics (metrics off) every call is a
// no-op and no clock is read. Not thread-safe: it travels with its request.
class RequestMeter {
 public:
  using Clock = std::chrono::steady_clock;

  RequestMeter() = default;
  // `explain`: a V1 :explain, whose compute KServe reports apart from predictions.
  explicit RequestMeter(observe::ModelMetrics* metrics, bool explain = false)
      : metrics_(metrics),
        explain_(explain),
        received_(metrics ? Clock::now() : Clock::time_point{}) {}

  // The answer's encoding begins.
  void Encoding() {
    if (metrics_) encode_start_ = Clock::now();
  }
  // The request's outcome: `model_ok` whether the model (or the scheduler) answered without
  // error, `answer_ok` whether the client gets a success after encoding. `job` carries the
  // stage times.
  void Finish(const ModelJob& job, bool model_ok, bool answer_ok);
  // A request that failed before reaching a job (a bad header, a bad CloudEvent).
  void Failed(observe::FailureReason reason) {
    if (metrics_) metrics_->RecordFailure(reason);
  }

  // Why a request the model side answered with an error failed: OTHER when it was never
  // scheduled (it did not decode or validate), REJECTED when the scheduler refused it or it
  // timed out in the queue, BACKEND when it ran.
  static observe::FailureReason ReasonFor(const ModelJob& job);

 private:
  observe::ModelMetrics* metrics_ = nullptr;
  bool explain_ = false;
  Clock::time_point received_;
  Clock::time_point encode_start_;
};

// Registers a collector for every model the repository knows: `quiver_model_state` (1 for its
// current state, 0 for the others) and, for READY models, Triton's
// `nv_model_load_duration_secs`. `repository` must outlive the registry's scrapes.
void AddModelStateMetrics(observe::MetricsRegistry* registry, const ModelRepository* repository);

}  // namespace quiver
