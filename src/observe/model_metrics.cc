#include "observe/model_metrics.h"

namespace quiver::observe {
namespace {

constexpr FailureReason kReasons[] = {FailureReason::kRejected, FailureReason::kCanceled,
                                      FailureReason::kBackend, FailureReason::kOther};

using Clock = std::chrono::steady_clock;

// b - a in nanoseconds; 0 when either is unset or b is not later.
uint64_t Nanos(Clock::time_point a, Clock::time_point b) {
  if (a == Clock::time_point{} || b <= a) return 0;
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
}

double Seconds(uint64_t nanos) { return static_cast<double>(nanos) / 1e9; }

}  // namespace

std::string_view FailureReasonName(FailureReason reason) {
  switch (reason) {
    case FailureReason::kRejected:
      return "REJECTED";
    case FailureReason::kCanceled:
      return "CANCELED";
    case FailureReason::kBackend:
      return "BACKEND";
    case FailureReason::kOther:
      return "OTHER";
  }
  return "OTHER";
}

const std::vector<double>& InferenceMetrics::LatencyBuckets() {
  static const std::vector<double> buckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025,  // below KServe's first bucket
      0.005,  0.01,    0.025,  0.05,  0.075,  0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};
  return buckets;
}

InferenceMetrics::InferenceMetrics(MetricsRegistry* r) {
  const std::vector<std::string> mv = {"model", "version"};
  success_ =
      r->AddCounter("nv_inference_request_success",
                    "Inference requests answered successfully (a batched request counts 1)", mv);
  failure_ = r->AddCounter("nv_inference_request_failure",
                           "Inference requests that failed, by reason: REJECTED by the scheduler, "
                           "CANCELED, BACKEND (model execution) or OTHER",
                           {"model", "reason", "version"});
  inference_count_ = r->AddCounter(
      "nv_inference_count",
      "Inferences performed: items of batching models (first dimension), else requests", mv);
  exec_count_ = r->AddCounter("nv_inference_exec_count",
                              "Model executions (a batch of several requests counts 1)", mv);
  pending_ = r->AddGauge("nv_inference_pending_request_count",
                         "Requests queued for the model and not yet executing", mv);
  // Durations are counted in nanoseconds and shown in microseconds, as Triton names them.
  const double us = 1000;  // divisor: nanoseconds to microseconds
  request_us_ = r->AddCounter("nv_inference_request_duration_us",
                              "Cumulative time of successful requests, received to answered, "
                              "in microseconds",
                              mv, us);
  queue_us_ = r->AddCounter("nv_inference_queue_duration_us",
                            "Cumulative time successful requests waited in the queue, in "
                            "microseconds",
                            mv, us);
  compute_input_us_ = r->AddCounter("nv_inference_compute_input_duration_us",
                                    "Cumulative time spent preparing inputs (merging a batch), "
                                    "in microseconds",
                                    mv, us);
  compute_infer_us_ = r->AddCounter("nv_inference_compute_infer_duration_us",
                                    "Cumulative time the model executed for successful requests, "
                                    "in microseconds",
                                    mv, us);
  compute_output_us_ = r->AddCounter("nv_inference_compute_output_duration_us",
                                     "Cumulative time spent on outputs (splitting a batch, "
                                     "selecting outputs), in microseconds",
                                     mv, us);
  const std::vector<double>& b = LatencyBuckets();
  request_s_ =
      r->AddHistogram("nv_inference_request_duration_seconds",
                      "Successful requests' time from received to answered, in seconds", mv, b);
  queue_s_ = r->AddHistogram("nv_inference_queue_duration_seconds",
                             "Successful requests' time in the queue, in seconds", mv, b);
  const std::vector<std::string> kserve = {"model_name"};
  preprocess_s_ = r->AddHistogram("request_preprocess_seconds",
                                  "Time decoding and validating a request, in seconds", kserve, b);
  predict_s_ = r->AddHistogram("request_predict_seconds",
                               "Time the model computed a request's answer (its batch's), in "
                               "seconds",
                               kserve, b);
  postprocess_s_ = r->AddHistogram("request_postprocess_seconds",
                                   "Time encoding an answer, in seconds", kserve, b);
  explain_s_ = r->AddHistogram("request_explain_seconds",
                               "Time the model's explainer computed an :explain answer, in "
                               "seconds",
                               kserve, b);
}

std::shared_ptr<ModelMetrics> InferenceMetrics::ForModel(const std::string& model,
                                                         const std::string& version,
                                                         bool has_explainer) {
  std::lock_guard<std::mutex> lock(mu_);
  std::weak_ptr<ModelMetrics>& slot = live_[{model, version}];
  if (auto live = slot.lock()) return live;
  // Children are get-or-create: a version released a moment ago whose series are not removed
  // yet is continued, and its destructor sees this live one and leaves them.
  std::shared_ptr<ModelMetrics> m(new ModelMetrics(this, model, version, has_explainer));
  slot = m;
  return m;
}

ModelMetrics::ModelMetrics(InferenceMetrics* owner, std::string model, std::string version,
                           bool has_explainer)
    : owner_(owner), model_(std::move(model)), version_(std::move(version)) {
  const std::vector<std::string> mv = {model_, version_};
  success_ = owner_->success_->WithLabels(mv);
  for (FailureReason r : kReasons) {
    failure_[static_cast<int>(r)] =
        owner_->failure_->WithLabels({model_, std::string(FailureReasonName(r)), version_});
  }
  inference_count_ = owner_->inference_count_->WithLabels(mv);
  exec_count_ = owner_->exec_count_->WithLabels(mv);
  pending_ = owner_->pending_->WithLabels(mv);
  request_ns_ = owner_->request_us_->WithLabels(mv);
  queue_ns_ = owner_->queue_us_->WithLabels(mv);
  compute_input_ns_ = owner_->compute_input_us_->WithLabels(mv);
  compute_infer_ns_ = owner_->compute_infer_us_->WithLabels(mv);
  compute_output_ns_ = owner_->compute_output_us_->WithLabels(mv);
  request_s_ = owner_->request_s_->WithLabels(mv);
  queue_s_ = owner_->queue_s_->WithLabels(mv);
  preprocess_s_ = owner_->preprocess_s_->WithLabels({model_});
  predict_s_ = owner_->predict_s_->WithLabels({model_});
  postprocess_s_ = owner_->postprocess_s_->WithLabels({model_});
  if (has_explainer) explain_s_ = owner_->explain_s_->WithLabels({model_});
}

ModelMetrics::~ModelMetrics() {
  std::lock_guard<std::mutex> lock(owner_->mu_);
  auto it = owner_->live_.find({model_, version_});
  if (it != owner_->live_.end() && !it->second.expired()) return;  // loaded again meanwhile
  if (it != owner_->live_.end()) owner_->live_.erase(it);
  const std::vector<std::string> mv = {model_, version_};
  owner_->success_->Remove(mv);
  for (FailureReason r : kReasons) {
    owner_->failure_->Remove({model_, std::string(FailureReasonName(r)), version_});
  }
  for (CounterFamily* f :
       {owner_->inference_count_, owner_->exec_count_, owner_->request_us_, owner_->queue_us_,
        owner_->compute_input_us_, owner_->compute_infer_us_, owner_->compute_output_us_}) {
    f->Remove(mv);
  }
  owner_->pending_->Remove(mv);
  owner_->request_s_->Remove(mv);
  owner_->queue_s_->Remove(mv);
  // KServe's histograms carry only the name: another loaded version of the same model keeps
  // them.
  for (const auto& [key, other] : owner_->live_) {
    if (key.first == model_ && !other.expired()) return;
  }
  owner_->preprocess_s_->Remove({model_});
  owner_->predict_s_->Remove({model_});
  owner_->postprocess_s_->Remove({model_});
  owner_->explain_s_->Remove({model_});
}

void ModelMetrics::RecordSuccess(const RequestTimeline& t) {
  const int shard = CurrentShard();  // once for the 18 updates below
  success_->Increment(1, shard);
  uint64_t request = Nanos(t.received, t.done);
  uint64_t queue = Nanos(t.enqueued, t.compute_start);
  uint64_t input = Nanos(t.compute_start, t.infer_start);
  uint64_t infer = Nanos(t.infer_start, t.infer_end);
  uint64_t output = Nanos(t.infer_end, t.compute_end);
  request_ns_->Increment(request, shard);
  queue_ns_->Increment(queue, shard);
  compute_input_ns_->Increment(input, shard);
  compute_infer_ns_->Increment(infer, shard);
  compute_output_ns_->Increment(output, shard);
  request_s_->Observe(Seconds(request), shard);
  queue_s_->Observe(Seconds(queue), shard);
  preprocess_s_->Observe(Seconds(Nanos(t.received, t.enqueued)), shard);
  if (!t.explain) {
    predict_s_->Observe(Seconds(input + infer + output), shard);
  } else if (explain_s_) {
    explain_s_->Observe(Seconds(input + infer + output), shard);
  }
  postprocess_s_->Observe(Seconds(Nanos(t.encode_start, t.done)), shard);
}

void ModelMetrics::RecordFailure(FailureReason reason) {
  failure_[static_cast<int>(reason)]->Increment();
}

void ModelMetrics::RecordExecution(uint64_t items) {
  const int shard = CurrentShard();
  exec_count_->Increment(1, shard);
  inference_count_->Increment(items, shard);
}

void ModelMetrics::AddPending(int64_t delta) { pending_->Add(static_cast<double>(delta)); }

}  // namespace quiver::observe
