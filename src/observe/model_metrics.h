// The per-model inference metrics of `quiver serve`, under the names the tools people already
// run expect: Triton's nv_inference_* counters (labels `model`, `version`; failures also
// `reason`) and KServe's request_*_seconds histograms (label `model_name`), plus histograms of
// whole-request and queue time in Triton's namespace.
//
// InferenceMetrics registers the families once; ForModel resolves one model version's children
// at load, and the ModelMetrics it returns is kept with the loaded model, so a request updates
// cells through pointers it already holds (relaxed atomics, no lock). As Triton does, a model
// version's series leave the exposition when it is released (unloaded or replaced), and a
// reload of the same version that overlaps the old one keeps counting on the same series.
// Thread-safe. The registry and the InferenceMetrics must outlive every ModelMetrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "observe/metrics_registry.h"

namespace quiver::observe {

// Why a request failed, as Triton's `reason` label says it.
enum class FailureReason {
  kRejected,  // the scheduler refused it: queue full, queue timeout, bad priority
  kCanceled,  // the client went away first
  kBackend,   // the model's execution failed
  kOther,     // anything else: the request did not decode or validate, the answer did not encode
};
std::string_view FailureReasonName(FailureReason reason);

// When one request passed each stage (steady clock). Stages a request skipped stay unset and
// count as zero.
struct RequestTimeline {
  using TimePoint = std::chrono::steady_clock::time_point;
  TimePoint received;       // the frontend has the whole request
  TimePoint enqueued;       // decoded and validated, handed to the scheduler
  TimePoint compute_start;  // its execution began (a batch's merge included)
  TimePoint infer_start;    // Model::Execute began
  TimePoint infer_end;      // Model::Execute returned
  TimePoint compute_end;    // its outputs were ready (split off the batch)
  TimePoint encode_start;   // encoding of the answer began
  TimePoint done;           // the answer is encoded and handed to the transport
  // KServe's V1 :explain: its compute is observed in request_explain_seconds instead of
  // request_predict_seconds.
  bool explain = false;
};

class InferenceMetrics;

// One model version's children. Obtained from InferenceMetrics::ForModel.
class ModelMetrics {
 public:
  ModelMetrics(const ModelMetrics&) = delete;
  ModelMetrics& operator=(const ModelMetrics&) = delete;
  ~ModelMetrics();

  // A request answered successfully: success count, the µs counters, the histograms.
  void RecordSuccess(const RequestTimeline& t);
  void RecordFailure(FailureReason reason);
  // One execution of the model over `items` items (a batch's summed first dimension; 1 for a
  // model that does not batch, as Triton counts).
  void RecordExecution(uint64_t items);
  // Requests queued for an instance and not yet executing (+1 queued, -n taken).
  void AddPending(int64_t delta);

 private:
  friend class InferenceMetrics;
  ModelMetrics(InferenceMetrics* owner, std::string model, std::string version, bool has_explainer);

  InferenceMetrics* owner_;
  const std::string model_, version_;
  std::shared_ptr<Counter> success_, failure_[4], inference_count_, exec_count_;
  std::shared_ptr<Counter> request_ns_, queue_ns_, compute_input_ns_, compute_infer_ns_,
      compute_output_ns_;
  std::shared_ptr<Gauge> pending_;
  std::shared_ptr<Histogram> request_s_, queue_s_, predict_s_, preprocess_s_, postprocess_s_;
  std::shared_ptr<Histogram> explain_s_;  // only for a model with an explainer
};

class InferenceMetrics {
 public:
  // Registers the families in `registry`, which must outlive this.
  explicit InferenceMetrics(MetricsRegistry* registry);

  // The children for one model version, shared with any live holder of the same version (the
  // first holder decides `has_explainer`, which adds request_explain_seconds).
  std::shared_ptr<ModelMetrics> ForModel(const std::string& model, const std::string& version,
                                         bool has_explainer = false);

  // Buckets of the latency histograms, in seconds: KServe's (the Prometheus clients'
  // defaults) with sub-5 ms buckets in front, since models here answer in microseconds.
  static const std::vector<double>& LatencyBuckets();

 private:
  friend class ModelMetrics;
  CounterFamily* success_;
  CounterFamily* failure_;  // labels model, reason, version
  CounterFamily* inference_count_;
  CounterFamily* exec_count_;
  CounterFamily* request_us_;
  CounterFamily* queue_us_;
  CounterFamily* compute_input_us_;
  CounterFamily* compute_infer_us_;
  CounterFamily* compute_output_us_;
  GaugeFamily* pending_;
  HistogramFamily* request_s_;
  HistogramFamily* queue_s_;
  HistogramFamily* predict_s_;  // KServe's, label model_name
  HistogramFamily* preprocess_s_;
  HistogramFamily* postprocess_s_;
  HistogramFamily* explain_s_;

  std::mutex mu_;
  // Live ModelMetrics by (model, version). guarded by mu_
  std::map<std::pair<std::string, std::string>, std::weak_ptr<ModelMetrics>> live_;
};

}  // namespace quiver::observe
