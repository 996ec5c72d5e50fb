#include "runtimes/python/python_runtime.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "runtimes/python/worker_pool.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;
using python_runtime::FrameKind;
using python_runtime::PythonWorker;
using python_runtime::WorkerMetadata;
using python_runtime::WorkerOptions;
using python_runtime::WorkerPool;

// Thread pools of the numeric libraries a model may use. One worker per instance is the
// parallelism; a pool per worker as large as the machine would oversubscribe it.
// How long a worker may take to load the model (import, construct, load()) before it is killed
// and the load fails: long enough for large weights, short enough that a load() stuck on a
// network call does not hold the server's control thread for good.
constexpr int64_t kDefaultLoadTimeoutMs = 120'000;

constexpr const char* kThreadVariables[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                            "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"};

// The folder this plugin was loaded from (or the executable it is linked into, in tests).
fs::path PluginDir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PluginDir), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code ec;
    fs::path file = fs::canonical(info.dli_fname, ec);
    if (!ec) return file.parent_path();
  }
  return {};
}

fs::path FromEnvOr(const char* variable, const fs::path& fallback) {
  const char* v = std::getenv(variable);
  return v != nullptr && *v != '\0' ? fs::path(v) : fallback;
}

class PythonModel final : public Model {
 public:
  PythonModel(std::unique_ptr<WorkerPool> pool, ModelMetadata metadata, bool wants_headers,
              bool has_explainer)
      : pool_(std::move(pool)),
        metadata_(std::move(metadata)),
        wants_headers_(wants_headers),
        has_explainer_(has_explainer) {}

  const ModelMetadata& metadata() const override { return metadata_; }

  Status Execute(const InferRequest& request, InferResponse* response) override {
    return pool_->Run([&](PythonWorker& worker) { return worker.InferV2(request, response); });
  }

  // Whether a method of the model takes a headers argument (the worker looked at load).
  bool WantsHeaders() const override { return wants_headers_; }

  bool TakesV1Json() const override { return true; }

  Status PredictV1(std::string_view body, const RequestHeaders* headers,
                   std::string* answer) override {
    return pool_->Run([&](PythonWorker& worker) {
      return worker.CallV1(FrameKind::kPredictV1, body, headers, answer);
    });
  }

  // Whether the model defines explain() (or forwards to an explainer_host).
  bool HasExplainer() const override { return has_explainer_; }

  // preprocess -> explain -> postprocess in the worker, as KServe's EXPLAIN verb.
  Status ExplainV1(std::string_view body, const RequestHeaders* headers,
                   std::string* answer) override {
    return pool_->Run([&](PythonWorker& worker) {
      return worker.CallV1(FrameKind::kExplainV1, body, headers, answer);
    });
  }

 private:
  const std::unique_ptr<WorkerPool> pool_;
  const ModelMetadata metadata_;
  const bool wants_headers_;
  const bool has_explainer_;
};

}  // namespace

StatusOr<std::unique_ptr<Model>> PythonRuntime::Load(const ModelConfig& config) {
  if (config.format != "sklearn" && config.format != "custom") {
    return InvalidArgument("the python runtime serves formats sklearn and custom, not '" +
                           config.format + "'");
  }
  const bool sklearn = config.format == "sklearn";
  if (config.model_file.empty()) {
    return InvalidArgument(
        "model '" + config.name + "': " +
        (sklearn ? "no scikit-learn model file (*.joblib, *.pkl or *.pickle) in '"
                 : "no Python file for the custom model (config.yaml model_file) in '") +
        config.path.string() + "'");
  }
  std::error_code ec;
  if (!fs::is_regular_file(config.model_file, ec)) {
    return InvalidArgument("model '" + config.name + "': " + (sklearn ? "sklearn" : "python") +
                           " model file '" + config.model_file.string() + "' does not exist");
  }
  QUIVER_ASSIGN_OR_RETURN(int64_t threads, config.IntParameter("threads", 1));
  QUIVER_ASSIGN_OR_RETURN(int64_t timeout_ms, config.IntParameter("timeout_ms", 0));
  if (timeout_ms < 0) {
    return InvalidArgument("parameters.timeout_ms: expected 0 (no limit) or more, got " +
                           std::to_string(timeout_ms));
  }
  QUIVER_ASSIGN_OR_RETURN(int64_t load_timeout_ms,
                          config.IntParameter("load_timeout_ms", kDefaultLoadTimeoutMs));
  if (load_timeout_ms < 0) {
    return InvalidArgument("parameters.load_timeout_ms: expected 0 (no limit) or more, got " +
                           std::to_string(load_timeout_ms));
  }
  if (threads < 1 || threads > 1024) {
    return InvalidArgument("parameters.threads: expected 1 to 1024, got " +
                           std::to_string(threads));
  }

  WorkerOptions options;
  options.model_name = config.name;
  const fs::path plugin_dir = PluginDir();
  options.executable = !options_.worker_executable.empty()
                           ? options_.worker_executable
                           : FromEnvOr("QUIVER_PYTHON_WORKER", plugin_dir / "quiver-python-worker");
  options.python_lib = !options_.python_lib.empty()
                           ? options_.python_lib
                           : FromEnvOr("QUIVER_PYTHON_LIB", plugin_dir / "python");
  if (!fs::is_regular_file(options.executable, ec)) {
    return Internal("the python runtime's worker executable " + options.executable.string() +
                    " is missing (set QUIVER_PYTHON_WORKER to its path)");
  }
  if (!fs::is_directory(options.python_lib / "quiver_model", ec)) {
    return Internal("the python runtime's Python library (quiver_model) is missing from " +
                    options.python_lib.string() + " (set QUIVER_PYTHON_LIB to its folder)");
  }
  options.working_dir = config.path.empty() ? config.model_file.parent_path() : config.path;
  for (const char* variable : kThreadVariables) {
    if (std::getenv(variable) == nullptr) {
      options.environment.push_back(std::string(variable) + "=" + std::to_string(threads));
    }
  }
  options.request_timeout = std::chrono::milliseconds(timeout_ms);
  options.load_timeout = std::chrono::milliseconds(load_timeout_ms);
  options.load_header = python_runtime::EncodeLoadHeader(config);

  WorkerMetadata declared;
  QUIVER_ASSIGN_OR_RETURN(
      std::unique_ptr<WorkerPool> pool,
      WorkerPool::Create(std::move(options), std::max(1, config.instance_count), &declared));
  ModelMetadata metadata;
  metadata.platform = declared.platform;
  metadata.inputs = std::move(declared.inputs);
  metadata.outputs = std::move(declared.outputs);
  // As KServe, any input names reach the model, which checks what it needs; inputs declared in
  // config.yaml are still checked by the server (ServableModel uses them).
  metadata.check_inputs = !config.inputs.empty();
  return std::unique_ptr<Model>(new PythonModel(std::move(pool), std::move(metadata),
                                                declared.wants_headers, declared.has_explainer));
}

}  // namespace quiver

QUIVER_RUNTIME_PLUGIN(quiver::PythonRuntime)
