// TorchScriptRuntime: the "torchscript" runtime plugin (KServe format `pytorch`). Serves modules
// saved by torch.jit.script or torch.jit.trace (*.pt) in-process through libtorch on the CPU.
// Thread-safe: Load, and Execute on every loaded model, may run concurrently on any threads.
#pragma once

#include <memory>
#include <string_view>

#include "runtime/model.h"

namespace quiver {

// How a loaded model maps the Open Inference Protocol onto `module.forward(...)`:
//
// Inputs. forward's tensor arguments (after `self`) are the inputs, in order.
//  - When config.yaml declares `inputs:`, the request must carry exactly those (the server checks
//    names, datatypes and shapes); the i-th declared input is forward's i-th argument.
//  - Otherwise the metadata lists INPUT__0, INPUT__1, ... (Triton's convention), FP32, shape
//    [-1]: a TorchScript file records neither datatypes nor ranks, so these are placeholders and
//    the server checks nothing. A request's tensors are placed by name when every name is
//    either of the form `<anything>__<i>` (position i) or one of forward's argument names, and
//    by their order in the request otherwise. Trailing arguments that have defaults (e.g.
//    `bias: Optional[Tensor] = None`) may be left out, as may any argument with a default when
//    inputs are named.
//  - Datatypes map to torch dtypes: BOOL, UINT8, INT8/16/32/64, FP16, BF16, FP32, FP64. UINT16,
//    UINT32, UINT64 (no such dtypes in libtorch 1.13) and BYTES are rejected (kInvalidArgument).
//    Request bytes are copied into a new tensor, so a model that writes to its input cannot
//    touch the request, and borrowed bytes need not be aligned.
//
// Outputs. What forward returns, each tensor made contiguous and copied out:
//  - a tensor: OUTPUT__0; a tuple or list of tensors: OUTPUT__0, OUTPUT__1, ...; with
//    config.yaml `outputs:`, the declared names instead, by position (their number must match);
//  - a Dict[str, Tensor]: its keys, in the dict's order; with config.yaml `outputs:`, just the
//    declared keys in the declared order (a missing key is a kInternal error);
//  - int, float and bool values (alone or inside a tuple, list or dict) become 0-d INT64, FP64
//    and BOOL tensors.
//  Metadata lists OUTPUT__0.. when forward's declared return type says how many (a tensor or a
//  tuple), as FP32 of shape [-1] (again placeholders), and no outputs for lists and dicts, whose
//  length and keys are known only when the model runs. Declare `outputs:` in config.yaml for
//  exact metadata.
//
// Execution runs under torch::InferenceMode (no autograd state) on the module in eval mode. One
// module serves every instance thread: forward on a shared TorchScript module is thread-safe,
// and parallelism comes from instance_count (each instance thread runs one request at a time).
// Requests run on instance threads, never on the I/O thread that decoded them, unless
// config.yaml sets `inline_execution: true` and intra_op_threads is 1: for tiny models, where
// the hand-off to an instance thread costs more than the model.
class TorchScriptRuntime final : public Runtime {
 public:
  std::string_view name() const override { return "torchscript"; }

  // Loads `config.model_file` onto the CPU (a module saved on a GPU is mapped to the CPU).
  // `config.parameters` understood:
  //   intra_op_threads: threads libtorch may use inside one operator of one request (default 1;
  //     the Debian build's own default is also 1). In this (OpenMP) build the count is a setting
  //     of each calling thread, so every instance thread applies its model's value before running
  //     it and models with different values coexist. at::set_num_threads also sets libtorch's
  //     process-wide default (for threads that have not run anything yet) and the size of its
  //     one shared pthreadpool (used by XNNPACK/QNNPACK kernels): those follow the model loaded
  //     or run last. Instances multiply: instance_count x intra_op_threads threads may be busy.
  // Errors: kInvalidArgument when there is no model file, it does not exist, or libtorch cannot
  // load it (the message names the file and gives torch's reason), when forward has a required
  // argument that is not a tensor, when config.yaml declares more or fewer inputs than forward
  // takes, or when a parameter is malformed.
  StatusOr<std::unique_ptr<Model>> Load(const ModelConfig& config) override;
};

}  // namespace quiver
