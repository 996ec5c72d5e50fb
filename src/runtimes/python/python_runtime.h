// PythonRuntime: the "sklearn" and "custom" runtime plugin (quiver-python.so). Python runs in
// worker processes, one per instance, so a model with several instances uses several cores (one
// interpreter holds one lock); see README.md in this folder for the design.
// Thread-safe: Load, and Execute/PredictV1/ExplainV1 on every loaded model, may run
// concurrently on any threads; each call waits for a free worker of its model.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "runtime/model.h"

namespace quiver {

class PythonRuntime final : public Runtime {
 public:
  // Where the worker executable and the Python library (quiver_model/, kserve/) are. Empty:
  // $QUIVER_PYTHON_WORKER and $QUIVER_PYTHON_LIB, else `quiver-python-worker` and `python/`
  // beside the plugin file.
  struct Options {
    std::filesystem::path worker_executable;
    std::filesystem::path python_lib;
  };
  PythonRuntime() = default;
  explicit PythonRuntime(Options options) : options_(std::move(options)) {}

  std::string_view name() const override { return "python"; }

  // Starts `config.instance_count` workers, each loading the model, and waits for all.
  // sklearn: `config.model_file` (*.joblib|*.pkl|*.pickle) through joblib.load. custom:
  // `config.model_file` (a .py file) is imported and its model class constructed and loaded.
  // `config.parameters` understood:
  //   method:   sklearn only: predict (default) or predict_proba.
  //   class:    custom only: the class to serve, when the file defines several.
  //   threads:  OMP/OpenBLAS/MKL threads per worker (default 1; instances give parallelism).
  //             Variables already set in the server's environment are left alone.
  //   timeout_ms: a request not answered within this many milliseconds fails (504) and its
  //             worker is killed and replaced (default 0: no limit).
  //   load_timeout_ms: a worker that has not loaded the model within this many milliseconds
  //             is killed and the load fails, naming the timeout (default 120000; 0: no
  //             limit). Also bounds the load of a replacement worker.
  //   (custom) any other key is passed to the class's constructor argument of that name.
  // Errors: kInvalidArgument for a missing or unloadable file, with the Python error's last
  // line naming the file (the whole traceback goes to the server's log); kInternal when a
  // worker cannot start or dies while loading; kDeadlineExceeded past load_timeout_ms.
  StatusOr<std::unique_ptr<Model>> Load(const ModelConfig& config) override;

 private:
  Options options_;
};

}  // namespace quiver
