// Model and Runtime: the interface every framework plugin implements.
// A Runtime turns a ModelConfig into a loaded Model; a Model executes requests. Execute is
// called concurrently (from up to `instance_count` instance threads, or from I/O threads when
// the model allows inline execution), so implementations must be thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tensor/infer.h"

namespace quiver {

struct ModelMetadata {
  std::string platform;  // "" as KServe reports, or e.g. "xgboost"
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  // When true the server checks every request against `inputs` (names, datatypes, shapes)
  // before the model sees it; models that accept anything (echo, xgboost's "any name") set
  // false and check for themselves.
  bool check_inputs = true;
};

// Dynamic batching of one model (Triton's semantics; KServe's `batcher: {maxBatchSize,
// maxLatency}` maps onto max_batch_size and max_queue_delay). Off when max_batch_size is 0.
struct BatchingConfig {
  enum class TimeoutAction { kReject, kDelay };
  int64_t max_batch_size = 0;  // items (first dimension), not requests
  std::vector<int64_t> preferred_batch_sizes;
  std::chrono::microseconds max_queue_delay{0};
  bool preserve_ordering = false;
  int priority_levels = 1;          // 1 is the highest priority
  int default_priority_level = 1;
  size_t max_queue_size = 0;        // per priority level; 0: unbounded
  std::chrono::microseconds default_timeout{0};  // 0: none
  TimeoutAction timeout_action = TimeoutAction::kReject;
  bool allow_timeout_override = false;  // a request's "timeout" parameter (µs) may shorten it
  // Whether the model's own config chose batching (then server-wide defaults do not apply).
  bool explicitly_set = false;

  bool enabled() const { return max_batch_size > 0; }
};

// Everything a runtime needs to load one model. Built from the model folder's config.yaml,
// file detection and command-line flags.
struct ModelConfig {
  std::string name;
  std::string version = "1";
  std::string format;          // KServe format name: xgboost, pytorch, onnx, sklearn, custom, ...
  std::filesystem::path path;  // the model's folder (may be empty for built-ins)
  std::filesystem::path model_file;  // the detected or configured model file, if any
  std::vector<TensorSpec> inputs;    // declared in config.yaml; may be empty
  std::vector<TensorSpec> outputs;
  int instance_count = 1;
  // Overrides the model's own choice of running short requests on I/O threads.
  std::optional<bool> inline_execution;
  BatchingConfig batching;
  // Runtime-specific settings from config.yaml `parameters:` (strings, as written).
  std::map<std::string, std::string> parameters;

  // Typed read of a parameter with a message naming `parameters.<key>` when it is malformed.
  StatusOr<int64_t> IntParameter(const std::string& key, int64_t fallback) const;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelMetadata& metadata() const = 0;
  // Runs one request and fills `response->outputs` (and, if it wants, parameters). The server
  // has set model name, version and id. Errors: kInvalidArgument for bad inputs (400),
  // kInternal for a failure of the model itself (500).
  virtual Status Execute(const InferRequest& request, InferResponse* response) = 0;
  // True when this request is short and never blocks, so it may run on the I/O thread that
  // decoded it (saving a thread hand-off). Models that sleep, lock or run long return false.
  virtual bool CanRunInline(const InferRequest& request) const {
    (void)request;
    return false;
  }

  // Whether the model reads the request's headers, as KServe models do (preprocess, predict
  // and postprocess get them). Asked once per request; when true the frontends attach the HTTP
  // headers (names lower-cased) or the gRPC metadata: InferRequest::headers for tensor
  // requests, the `headers` argument of PredictV1/ExplainV1. When false nothing is copied.
  virtual bool WantsHeaders() const { return false; }

  // The V1 protocol (`:predict`). Most models take tensors: the server turns `instances` into
  // the batch input and the outputs into `predictions`. A model that wants the V1 JSON body
  // itself (echo; KServe-style Python models that receive dicts) returns true and implements
  // PredictV1, which writes the whole response body (e.g. {"predictions": [...]}).
  // `headers` is null unless WantsHeaders(). Thread-safe, like Execute.
  virtual bool TakesV1Json() const { return false; }
  virtual Status PredictV1(std::string_view body, const RequestHeaders* headers,
                           std::string* response) {
    (void)body;
    (void)headers;
    (void)response;
    return Unimplemented("this model does not take V1 JSON");
  }

  // KServe's V1 `:explain`: a model with an explainer returns true and implements ExplainV1,
  // which takes the V1 JSON body and writes the whole response body. The server answers 501
  // for models without one and never calls ExplainV1 then. `headers` as for PredictV1.
  virtual bool HasExplainer() const { return false; }
  virtual Status ExplainV1(std::string_view body, const RequestHeaders* headers,
                           std::string* response) {
    (void)body;
    (void)headers;
    (void)response;
    return Unimplemented("this model has no explainer");
  }
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual std::string_view name() const = 0;
  virtual StatusOr<std::unique_ptr<Model>> Load(const ModelConfig& config) = 0;
};

// A plugin shared library exports this C symbol; it returns a new Runtime (owned by the caller)
// or null when `abi_version` differs from the one it was built for.
// 2: ModelConfig gained batching. 3: InferRequest::headers; Model::WantsHeaders, HasExplainer,
// ExplainV1, and PredictV1 takes headers.
inline constexpr int kRuntimeAbiVersion = 3;
inline constexpr const char* kRuntimeFactorySymbol = "QuiverCreateRuntime";
using RuntimeFactoryFn = Runtime* (*)(int abi_version);

}  // namespace quiver

// Defines the factory symbol of a runtime plugin: QUIVER_RUNTIME_PLUGIN(XgboostRuntime).
#define QUIVER_RUNTIME_PLUGIN(RuntimeClass)                                  \
  extern "C" __attribute__((visibility("default"))) ::quiver::Runtime*      \
  QuiverCreateRuntime(int abi_version) {                                     \
    if (abi_version != ::quiver::kRuntimeAbiVersion) return nullptr;         \
    return new RuntimeClass();                                               \
  }
