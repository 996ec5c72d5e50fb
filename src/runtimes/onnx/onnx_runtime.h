// OnnxRuntime: the "onnx" runtime plugin. Serves ONNX models in-process through OpenCV's dnn
// module (Debian's OpenCV 4.6, CPU, FP32).
// Thread-safe: Load, and Execute on every loaded model, may run concurrently on any threads.
#pragma once

#include <memory>
#include <string_view>

#include "runtime/model.h"

namespace quiver {

// A loaded model's metadata is its graph's: input and output names, element types and shapes
// (-1 for symbolic dimensions such as the batch). Requests give the inputs by name; every input
// of the graph is required, shapes must match, and inputs that share a symbolic dimension
// ("batch") must give it the same size. OpenCV dnn computes in FP32, so inputs may come as FP32
// or be converted to it (FP64, integers, BOOL), and outputs are converted from FP32 to the type
// the graph declares (FP32 for nearly every model). Every output is returned unless the request
// names some. Execute fails with kInvalidArgument for a bad input (the message names it) and
// kInternal when OpenCV fails on inputs that match the graph (OpenCV's reason).
//
// Models never run on I/O threads (CanRunInline is false). OpenCV's cv::dnn::Net is not
// thread-safe, so a model holds one Net per instance (`instance_count`, each importing the model
// once: memory grows with it) and a call takes one for its duration; more concurrent calls than
// instances wait for one to be free.
class OnnxRuntime final : public Runtime {
 public:
  std::string_view name() const override { return "onnx"; }

  // Loads `config.model_file`. `config.parameters` understood:
  //   intra_op_threads: threads OpenCV may use inside one layer (default 1; parallelism comes
  //       from instances and concurrent requests). OpenCV has one setting for the whole process
  //       (cv::setNumThreads): the model loaded last decides it for every ONNX model.
  // When the inputs' shapes are fixed but for the first (batch) dimension, every instance runs
  // once on zeros (batch 1) before the model is ready, so that a graph OpenCV imports but cannot
  // run fails here rather than on the first request.
  // Errors (kInvalidArgument): no model file, it cannot be read, is not an ONNX model (corrupt,
  // truncated), uses an operator OpenCV dnn 4.6 cannot import ("model uses operator 'TopK'
  // which the ONNX engine (OpenCV dnn 4.6.0) cannot run"), declares inputs or outputs of a type
  // this runtime does not serve (STRING, FLOAT16, ...), fails its trial run, or a parameter is
  // malformed. Each message names the file.
  StatusOr<std::unique_ptr<Model>> Load(const ModelConfig& config) override;
};

}  // namespace quiver
