#include "server/serve_metrics.h"

#include <string>
#include <vector>

#include "observe/prometheus_text.h"

namespace quiver {

observe::FailureReason RequestMeter::ReasonFor(const ModelJob& job) {
  if (job.enqueued == Clock::time_point{}) return observe::FailureReason::kOther;
  if (job.compute_start == Clock::time_point{}) return observe::FailureReason::kRejected;
  return observe::FailureReason::kBackend;
}

void RequestMeter::Finish(const ModelJob& job, bool model_ok, bool answer_ok) {
  if (metrics_ == nullptr) return;
  if (!model_ok) return metrics_->RecordFailure(ReasonFor(job));
  if (!answer_ok) return metrics_->RecordFailure(observe::FailureReason::kOther);
  observe::RequestTimeline t;
  t.received = received_;
  t.enqueued = job.enqueued;
  t.compute_start = job.compute_start;
  t.infer_start = job.infer_start;
  t.infer_end = job.infer_end;
  t.compute_end = job.compute_end;
  t.encode_start = encode_start_;
  t.done = Clock::now();
  t.explain = explain_;
  metrics_->RecordSuccess(t);
}

void AddModelStateMetrics(observe::MetricsRegistry* registry, const ModelRepository* repository) {
  registry->AddCollector([repository](observe::PrometheusWriter& out) {
    auto models = repository->List();
    if (models.empty()) return;
    static const ModelState kStates[] = {ModelState::kLoading, ModelState::kReady,
                                         ModelState::kFailed, ModelState::kUnloading,
                                         ModelState::kUnloaded};
    const std::vector<std::string> state_labels = {"model", "state", "version"};
    out.Family("quiver_model_state",
               "Model lifecycle state: 1 for the state the model is in, 0 for the others",
               observe::MetricType::kGauge);
    for (const auto& e : models) {
      for (ModelState s : kStates) {
        std::vector<std::string> values = {e->name, std::string(ModelStateName(s)), e->version};
        out.Sample("quiver_model_state", state_labels, values, e->state == s ? 1.0 : 0.0);
      }
    }
    const std::vector<std::string> labels = {"model", "version"};
    bool header = false;
    for (const auto& e : models) {
      if (e->state != ModelState::kReady) continue;
      if (!header) {
        out.Family("nv_model_load_duration_secs", "Time the model's last load took, in seconds",
                   observe::MetricType::kGauge);
        header = true;
      }
      std::vector<std::string> values = {e->name, e->version};
      out.Sample("nv_model_load_duration_secs", labels, values, e->load_seconds);
    }
  });
}

}  // namespace quiver
