#include "runtimes/torchscript/torchscript_runtime.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace quiver {
namespace {

namespace fs = std::filesystem;

// libtorch's messages: c10::Error's without its C++ backtrace is one line, or for an error
// raised while the TorchScript interpreter ran, "The following operation failed in the
// TorchScript interpreter." then two tracebacks (the serialized code and the original Python)
// and, last, "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x5 and 4x16)". A user
// wants that last line.
std::string TorchReason(std::string_view what) {
  constexpr std::string_view kInterpreter = "The following operation failed in the TorchScript";
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    return s;
  };
  std::string_view reason = trim(what);
  if (reason.starts_with(kInterpreter)) {
    size_t newline = reason.rfind('\n');
    if (newline != std::string_view::npos) reason = trim(reason.substr(newline + 1));
  } else {
    reason = trim(reason.substr(0, reason.find('\n')));
  }
  return reason.empty() ? std::string("unknown libtorch error") : std::string(reason);
}

std::string ReasonOf(const c10::Error& e) { return TorchReason(e.what_without_backtrace()); }
std::string ReasonOf(const std::exception& e) { return TorchReason(e.what()); }

std::optional<c10::ScalarType> TorchType(DataType type) {
  switch (type) {
    case DataType::kBool:
      return c10::ScalarType::Bool;
    case DataType::kUint8:
      return c10::ScalarType::Byte;
    case DataType::kInt8:
      return c10::ScalarType::Char;
    case DataType::kInt16:
      return c10::ScalarType::Short;
    case DataType::kInt32:
      return c10::ScalarType::Int;
    case DataType::kInt64:
      return c10::ScalarType::Long;
    case DataType::kFp16:
      return c10::ScalarType::Half;
    case DataType::kBf16:
      return c10::ScalarType::BFloat16;
    case DataType::kFp32:
      return c10::ScalarType::Float;
    case DataType::kFp64:
      return c10::ScalarType::Double;
    default:
      return std::nullopt;  // UINT16/32/64 (no such dtypes in libtorch 1.13), BYTES
  }
}

std::optional<DataType> ProtocolType(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Bool:
      return DataType::kBool;
    case c10::ScalarType::Byte:
      return DataType::kUint8;
    case c10::ScalarType::Char:
      return DataType::kInt8;
    case c10::ScalarType::Short:
      return DataType::kInt16;
    case c10::ScalarType::Int:
      return DataType::kInt32;
    case c10::ScalarType::Long:
      return DataType::kInt64;
    case c10::ScalarType::Half:
      return DataType::kFp16;
    case c10::ScalarType::BFloat16:
      return DataType::kBf16;
    case c10::ScalarType::Float:
      return DataType::kFp32;
    case c10::ScalarType::Double:
      return DataType::kFp64;
    default:
      return std::nullopt;  // complex, quantized
  }
}

// A forward argument Quiver may pass a tensor to: Tensor or Optional[Tensor].
bool TakesTensor(const c10::Argument& argument) {
  c10::TypePtr type = argument.type();
  if (auto optional = type->cast<c10::OptionalType>()) type = optional->getElementType();
  return type->kind() == c10::TypeKind::TensorType;
}

std::string Quoted(const std::vector<Tensor>& tensors) {
  std::string names;
  for (const Tensor& t : tensors) names += (names.empty() ? "'" : ", '") + t.name + "'";
  return names;
}

// `<anything>__<i>`: Triton's positional naming (INPUT__0, input__1, ...).
std::optional<size_t> PositionSuffix(std::string_view name) {
  size_t sep = name.rfind("__");
  if (sep == std::string_view::npos || sep + 2 == name.size() || name.size() - sep > 8) {
    return std::nullopt;
  }
  size_t value = 0;
  for (char c : name.substr(sep + 2)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<size_t>(c - '0');
  }
  return value;
}

struct ForwardArgument {
  std::string name;                          // as in the Python source
  std::optional<c10::IValue> default_value;  // absent for required arguments
  std::string description;                   // "Tensor? bias=None" for messages
};

class TorchScriptModel final : public Model {
 public:
  static StatusOr<std::unique_ptr<Model>> Create(const ModelConfig& config);

  const ModelMetadata& metadata() const override { return metadata_; }
  Status Execute(const InferRequest& request, InferResponse* response) override;
  // Not by default: a network may take milliseconds, and an I/O thread running it stalls every
  // connection it serves. Only when config.yaml says `inline_execution: true` (a model known to
  // be tiny; bench/torchscript_bench.py measures the saving) and with one intra-op thread, so
  // that no I/O thread starts an OpenMP team.
  bool CanRunInline(const InferRequest& request) const override {
    (void)request;
    return inline_;
  }

 private:
  TorchScriptModel() = default;

  // forward(...) as a user wrote it, for messages.
  std::string Signature() const;
  // Picks the request tensor for each forward argument (null: not given).
  Status PlaceInputs(const InferRequest& request, std::vector<const Tensor*>* slots) const;
  Status BuildArguments(const InferRequest& request, std::vector<c10::IValue>* arguments) const;
  Status CollectOutputs(const c10::IValue& result, InferResponse* response) const;

  std::string model_name_;
  // The module is only read after loading; forward on it is thread-safe (the graph executor
  // locks its own plan cache).
  torch::jit::Module module_;
  // forward's leading tensor arguments (after self); the first `required_` have no default.
  std::vector<ForwardArgument> arguments_;
  size_t required_ = 0;
  // Declared in config.yaml, or empty.
  std::vector<std::string> input_names_;
  std::vector<std::string> output_names_;
  int intra_op_threads_ = 1;
  bool inline_ = false;
  ModelMetadata metadata_;
};

std::string TorchScriptModel::Signature() const {
  std::string s = "forward(";
  for (size_t i = 0; i < arguments_.size(); ++i) {
    s += (i == 0 ? "" : ", ") + arguments_[i].description;
  }
  return s + ")";
}

StatusOr<std::unique_ptr<Model>> TorchScriptModel::Create(const ModelConfig& config) {
  QUIVER_ASSIGN_OR_RETURN(int64_t threads, config.IntParameter("intra_op_threads", 1));
  if (threads < 1 || threads > 1024) {
    return InvalidArgument("parameters.intra_op_threads: expected 1 to 1024 threads, got " +
                           std::to_string(threads));
  }
  const std::string file = config.model_file.string();
  if (file.empty()) {
    return InvalidArgument("model '" + config.name +
                           "': no TorchScript model file (a .pt saved by torch.jit.save) in '" +
                           config.path.string() + "'");
  }
  std::error_code ec;
  if (!fs::exists(config.model_file, ec)) {
    return InvalidArgument("cannot load TorchScript model file '" + file + "': no such file");
  }
  if (!fs::is_regular_file(config.model_file, ec)) {
    return InvalidArgument("cannot load TorchScript model file '" + file + "': not a file");
  }

  std::unique_ptr<TorchScriptModel> model(new TorchScriptModel());
  model->model_name_ = config.name;
  model->intra_op_threads_ = static_cast<int>(threads);
  model->inline_ = config.inline_execution.value_or(false) && threads == 1;
  std::optional<torch::jit::Method> forward;
  try {
    model->module_ = torch::jit::load(file, torch::Device(torch::kCPU));
    model->module_.eval();
    if (auto method = model->module_.find_method("forward")) forward.emplace(std::move(*method));
  } catch (const c10::Error& e) {
    return InvalidArgument("cannot load TorchScript model file '" + file + "': " + ReasonOf(e));
  } catch (const std::exception& e) {
    return InvalidArgument("cannot load TorchScript model file '" + file + "': " + ReasonOf(e));
  }
  if (!forward) {
    return InvalidArgument("TorchScript model file '" + file + "' has no forward method");
  }

  // forward's arguments after self: the leading tensor ones are the inputs; whatever follows
  // must have a default, since a request can only supply tensors.
  const c10::FunctionSchema& schema = forward->function().getSchema();
  const std::vector<c10::Argument>& schema_arguments = schema.arguments();
  bool inputs_done = false;
  for (size_t i = 1; i < schema_arguments.size(); ++i) {
    const c10::Argument& argument = schema_arguments[i];
    std::ostringstream description;
    description << argument;
    if (!inputs_done && TakesTensor(argument) && !argument.kwarg_only()) {
      if (!argument.default_value() && model->required_ != model->arguments_.size()) {
        return InvalidArgument("TorchScript model file '" + file + "': forward argument '" +
                               argument.name() + "' has no default but follows one that has");
      }
      ForwardArgument input{argument.name(), std::nullopt, description.str()};
      // Not a plain copy: IValue converts from an empty c10::optional too (to None).
      if (argument.default_value()) {
        input.default_value = *argument.default_value();
      } else {
        ++model->required_;
      }
      model->arguments_.push_back(std::move(input));
      continue;
    }
    inputs_done = true;
    if (!argument.default_value()) {
      return InvalidArgument("TorchScript model file '" + file + "': forward argument '" +
                             description.str() +
                             "' is required but not a tensor; Quiver passes only tensors");
    }
  }

  ModelMetadata& metadata = model->metadata_;
  metadata.platform = "pytorch_libtorch";  // Triton's name for TorchScript models
  if (!config.inputs.empty()) {
    if (config.inputs.size() < model->required_ ||
        config.inputs.size() > model->arguments_.size()) {
      return InvalidArgument("config.yaml: inputs: declares " +
                             std::to_string(config.inputs.size()) + " inputs, but " +
                             model->Signature() + " of '" + file + "' takes " +
                             (model->required_ == model->arguments_.size()
                                  ? std::to_string(model->required_)
                                  : std::to_string(model->required_) + " to " +
                                        std::to_string(model->arguments_.size())) +
                             " tensors");
    }
    for (const TensorSpec& spec : config.inputs) model->input_names_.push_back(spec.name);
    metadata.inputs = config.inputs;
    metadata.check_inputs = true;
  } else {
    for (size_t i = 0; i < model->arguments_.size(); ++i) {
      metadata.inputs.push_back({"INPUT__" + std::to_string(i), DataType::kFp32, {-1}});
    }
    metadata.check_inputs = false;
  }

  if (!config.outputs.empty()) {
    for (const TensorSpec& spec : config.outputs) model->output_names_.push_back(spec.name);
    metadata.outputs = config.outputs;
  } else if (schema.returns().size() == 1) {
    const c10::TypePtr& type = schema.returns()[0].type();
    size_t count = 0;
    if (type->kind() == c10::TypeKind::TensorType) {
      count = 1;
    } else if (auto tuple = type->cast<c10::TupleType>()) {
      count = tuple->elements().size();
    }
    for (size_t i = 0; i < count; ++i) {
      metadata.outputs.push_back({"OUTPUT__" + std::to_string(i), DataType::kFp32, {-1}});
    }
  }
  // Applied here too, so libtorch's process-wide default (used by threads that have not run a
  // model yet) follows the configuration from the start.
  try {
    at::set_num_threads(model->intra_op_threads_);
  } catch (const std::exception& e) {
    return Internal("setting intra_op_threads: " + ReasonOf(e));
  }
  return std::unique_ptr<Model>(std::move(model));
}

Status TorchScriptModel::PlaceInputs(const InferRequest& request,
                                     std::vector<const Tensor*>* slots) const {
  slots->assign(arguments_.size(), nullptr);
  if (!input_names_.empty()) {
    // The server checked the request against the declared inputs; checked again here since the
    // model must not trust it.
    if (request.inputs.size() != input_names_.size()) {
      return InvalidArgument("model '" + model_name_ + "' takes " +
                             std::to_string(input_names_.size()) + " inputs, got " +
                             std::to_string(request.inputs.size()));
    }
    for (size_t i = 0; i < input_names_.size(); ++i) {
      (*slots)[i] = request.FindInput(input_names_[i]);
      if ((*slots)[i] == nullptr) {
        return InvalidArgument("missing input '" + input_names_[i] + "' for model '" + model_name_ +
                               "'");
      }
    }
    return Status::Ok();
  }

  if (request.inputs.size() > arguments_.size()) {
    return InvalidArgument("model '" + model_name_ + "' takes at most " +
                           std::to_string(arguments_.size()) + " input" +
                           (arguments_.size() == 1 ? "" : "s") + " (" + Signature() + "), got " +
                           std::to_string(request.inputs.size()) + ": " + Quoted(request.inputs));
  }
  // By name when every name says where it goes: INPUT__<i>, or forward's argument names.
  auto place = [&](auto position_of) {
    std::vector<const Tensor*> placed(arguments_.size(), nullptr);
    for (const Tensor& t : request.inputs) {
      std::optional<size_t> position = position_of(t.name);
      if (!position || *position >= placed.size() || placed[*position] != nullptr) return false;
      placed[*position] = &t;
    }
    *slots = std::move(placed);
    return true;
  };
  if (place(PositionSuffix)) return Status::Ok();
  if (place([this](std::string_view name) -> std::optional<size_t> {
        for (size_t i = 0; i < arguments_.size(); ++i) {
          if (arguments_[i].name == name) return i;
        }
        return std::nullopt;
      })) {
    return Status::Ok();
  }
  for (size_t i = 0; i < request.inputs.size(); ++i) (*slots)[i] = &request.inputs[i];
  return Status::Ok();
}

// A new tensor holding a copy of the request's bytes (which may be borrowed and unaligned).
Status ToTorch(const Tensor& input, torch::Tensor* out) {
  std::optional<c10::ScalarType> type = TorchType(input.datatype);
  if (!type) {
    return InvalidArgument("input '" + input.name + "': datatype " +
                           std::string(DataTypeName(input.datatype)) +
                           " is not supported by TorchScript models (expected BOOL, UINT8, INT8, "
                           "INT16, INT32, INT64, FP16, BF16, FP32 or FP64)");
  }
  for (int64_t d : input.shape) {
    if (d < 0) {
      return InvalidArgument("input '" + input.name + "': invalid shape " +
                             ShapeToString(input.shape));
    }
  }
  const int64_t count = input.element_count();
  const size_t element_size = DataTypeSize(input.datatype);
  if (count < 0 || input.data.size() != static_cast<size_t>(count) * element_size) {
    return InvalidArgument("input '" + input.name + "': " + std::to_string(input.data.size()) +
                           " bytes of data do not match shape " + ShapeToString(input.shape) +
                           " of " + std::string(DataTypeName(input.datatype)));
  }
  *out = torch::empty(input.shape, torch::TensorOptions().dtype(*type));
  if (input.data.size() > 0) std::memcpy(out->data_ptr(), input.data.data(), input.data.size());
  return Status::Ok();
}

Status TorchScriptModel::BuildArguments(const InferRequest& request,
                                        std::vector<c10::IValue>* arguments) const {
  std::vector<const Tensor*> slots;
  QUIVER_RETURN_IF_ERROR(PlaceInputs(request, &slots));
  size_t count = required_;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] != nullptr) count = std::max(count, i + 1);
  }
  arguments->reserve(count);
  for (size_t i = 0; i < count; ++i) {
    if (slots[i] == nullptr) {
      if (arguments_[i].default_value) {
        arguments->push_back(*arguments_[i].default_value);
        continue;
      }
      const std::string name =
          input_names_.empty() ? "INPUT__" + std::to_string(i) : input_names_[i];
      return InvalidArgument("missing input '" + name + "' (argument '" + arguments_[i].name +
                             "' of " + Signature() + ") for model '" + model_name_ + "'; got " +
                             (request.inputs.empty() ? "none" : Quoted(request.inputs)));
    }
    torch::Tensor tensor;
    QUIVER_RETURN_IF_ERROR(ToTorch(*slots[i], &tensor));
    arguments->emplace_back(std::move(tensor));
  }
  return Status::Ok();
}

// One output: a tensor or a Python scalar (int, float, bool) as a 0-d tensor, copied out.
Status ToProtocol(const std::string& name, const c10::IValue& value, Tensor* out) {
  torch::Tensor t;
  if (value.isTensor()) {
    t = value.toTensor();
  } else if (value.isInt()) {
    t = torch::scalar_tensor(value.toInt(), torch::kLong);
  } else if (value.isDouble()) {
    t = torch::scalar_tensor(value.toDouble(), torch::kDouble);
  } else if (value.isBool()) {
    t = torch::scalar_tensor(value.toBool(), torch::kBool);
  } else {
    return Internal("output '" + name + "' is a " + value.tagKind() +
                    ", not a tensor; a TorchScript model must return tensors, or a tuple, list "
                    "or Dict[str, Tensor] of them");
  }
  if (!t.defined()) return Internal("output '" + name + "' is an undefined tensor");
  if (t.is_quantized()) t = t.dequantize();
  if (t.layout() != torch::kStrided) t = t.to_dense();
  if (!t.device().is_cpu()) t = t.cpu();
  t = t.contiguous();
  std::optional<DataType> type = ProtocolType(t.scalar_type());
  if (!type) {
    return Internal("output '" + name + "' has dtype " +
                    std::string(c10::toString(t.scalar_type())) +
                    ", which the Open Inference Protocol cannot carry");
  }
  out->name = name;
  out->datatype = *type;
  out->shape.assign(t.sizes().begin(), t.sizes().end());
  // Copied rather than borrowed: an output may alias state the module changes on its next call.
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  out->data = TensorData::Allocate(bytes);
  if (bytes > 0) std::memcpy(out->data.mutable_data(), t.data_ptr(), bytes);
  return Status::Ok();
}

Status TorchScriptModel::CollectOutputs(const c10::IValue& result, InferResponse* response) const {
  std::vector<std::pair<std::string, c10::IValue>> named;
  if (result.isGenericDict()) {
    for (const auto& entry : result.toGenericDict()) {
      if (!entry.key().isString()) {
        return Internal("the model returned a dict with a " + entry.key().tagKind() +
                        " key; expected Dict[str, Tensor]");
      }
      named.emplace_back(entry.key().toStringRef(), entry.value());
    }
    if (!output_names_.empty()) {
      std::vector<std::pair<std::string, c10::IValue>> selected;
      for (const std::string& want : output_names_) {
        auto it = std::find_if(named.begin(), named.end(),
                               [&](const auto& item) { return item.first == want; });
        if (it == named.end()) {
          std::string keys;
          for (const auto& item : named) keys += (keys.empty() ? "'" : ", '") + item.first + "'";
          return Internal("the model returned no '" + want +
                          "' (declared in config.yaml "
                          "outputs); its dict has " +
                          (keys.empty() ? "no keys" : keys));
        }
        selected.push_back(std::move(*it));
      }
      named = std::move(selected);
    }
  } else {
    std::vector<c10::IValue> values;
    if (result.isTuple()) {
      const auto& elements = result.toTupleRef().elements();
      values.assign(elements.begin(), elements.end());
    } else if (result.isList()) {
      const auto list = result.toListRef();
      values.assign(list.begin(), list.end());
    } else {
      values.push_back(result);
    }
    if (!output_names_.empty() && output_names_.size() != values.size()) {
      return Internal("the model returned " + std::to_string(values.size()) + " output" +
                      (values.size() == 1 ? "" : "s") + " but config.yaml declares " +
                      std::to_string(output_names_.size()));
    }
    for (size_t i = 0; i < values.size(); ++i) {
      named.emplace_back(output_names_.empty() ? "OUTPUT__" + std::to_string(i) : output_names_[i],
                         std::move(values[i]));
    }
  }
  response->outputs.reserve(response->outputs.size() + named.size());
  for (const auto& [name, value] : named) {
    Tensor out;
    QUIVER_RETURN_IF_ERROR(ToProtocol(name, value, &out));
    response->outputs.push_back(std::move(out));
  }
  return Status::Ok();
}

Status TorchScriptModel::Execute(const InferRequest& request, InferResponse* response) {
  // Nothing from libtorch may escape: an exception thrown through the plugin boundary would end
  // the server.
  try {
    // No autograd bookkeeping; tensors made here are inference tensors.
    c10::InferenceMode inference_mode;
    // The OpenMP thread count is a per-thread setting in this build: set it on the first run of
    // this model on this thread (or after another model changed it).
    if (at::get_num_threads() != intra_op_threads_) at::set_num_threads(intra_op_threads_);
    std::vector<c10::IValue> arguments;
    QUIVER_RETURN_IF_ERROR(BuildArguments(request, &arguments));
    c10::IValue result;
    try {
      result = module_.forward(std::move(arguments));
    } catch (const c10::Error& e) {
      return Internal("TorchScript model '" + model_name_ + "' failed: " + ReasonOf(e));
    } catch (const std::exception& e) {
      return Internal("TorchScript model '" + model_name_ + "' failed: " + ReasonOf(e));
    }
    return CollectOutputs(result, response);
  } catch (const c10::Error& e) {
    return Internal("TorchScript model '" + model_name_ + "': " + ReasonOf(e));
  } catch (const std::exception& e) {
    return Internal("TorchScript model '" + model_name_ + "': " + ReasonOf(e));
  }
}

}  // namespace

StatusOr<std::unique_ptr<Model>> TorchScriptRuntime::Load(const ModelConfig& config) {
  return TorchScriptModel::Create(config);
}

}  // namespace quiver

QUIVER_RUNTIME_PLUGIN(quiver::TorchScriptRuntime)
