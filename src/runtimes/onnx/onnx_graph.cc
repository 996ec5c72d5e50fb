#include "runtimes/onnx/onnx_graph.h"

#include <iterator>
#include <limits>
#include <string>
#include <unordered_set>
#include <utility>

#include "onnx_graph.pb.h"

namespace quiver::onnx_runtime {
namespace {

namespace pb = ::quiver::onnx_graph;

// TensorProto.DataType of onnx.proto, by number: its name and the protocol datatype, if any.
struct OnnxType {
  const char* name;
  std::optional<DataType> datatype;
};
constexpr OnnxType kOnnxTypes[] = {
    {"UNDEFINED", std::nullopt},   {"FLOAT", DataType::kFp32},    {"UINT8", DataType::kUint8},
    {"INT8", DataType::kInt8},     {"UINT16", DataType::kUint16}, {"INT16", DataType::kInt16},
    {"INT32", DataType::kInt32},   {"INT64", DataType::kInt64},   {"STRING", std::nullopt},
    {"BOOL", DataType::kBool},     {"FLOAT16", DataType::kFp16},  {"DOUBLE", DataType::kFp64},
    {"UINT32", DataType::kUint32}, {"UINT64", DataType::kUint64}, {"COMPLEX64", std::nullopt},
    {"COMPLEX128", std::nullopt},  {"BFLOAT16", DataType::kBf16},
};  // 17 and later (FLOAT8 types) have no protocol datatype

const OnnxType* FindOnnxType(int32_t elem_type) {
  if (elem_type < 0 || elem_type >= static_cast<int32_t>(std::size(kOnnxTypes))) return nullptr;
  return &kOnnxTypes[elem_type];
}

Status ReadValue(const pb::ValueInfoProto& proto, const std::string& where, OnnxValue* value) {
  if (proto.name().empty()) return InvalidArgument(where + " has no name");
  value->name = proto.name();
  const std::string what = where + " '" + value->name + "'";
  if (!proto.has_type() || !proto.type().has_tensor_type()) {
    return InvalidArgument(what +
                           " is not a tensor (sequences, maps and optional values are "
                           "not supported)");
  }
  const pb::TypeProto::Tensor& tensor = proto.type().tensor_type();
  value->elem_type = tensor.elem_type();
  value->has_shape = tensor.has_shape();
  for (const pb::TensorShapeProto::Dimension& dim : tensor.shape().dim()) {
    // A dimension with neither a value nor a name is unknown, as is a negative one.
    value->shape.push_back(dim.has_dim_value() && dim.dim_value() >= 0 ? dim.dim_value() : -1);
    value->dim_params.push_back(dim.has_dim_param() ? dim.dim_param() : std::string());
  }
  return Status::Ok();
}

}  // namespace

StatusOr<OnnxGraph> ParseOnnxGraph(std::string_view bytes) {
  if (bytes.empty()) return InvalidArgument("the file is empty");
  // protobuf reads at most 2 GB; larger ONNX models keep their weights in external files,
  // which OpenCV dnn 4.6 does not read either.
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return InvalidArgument("the file is larger than 2 GB, the most a protobuf ModelProto holds");
  }
  pb::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgument(
        "not an ONNX model: the bytes are not a valid protobuf ModelProto "
        "(truncated or corrupt file?)");
  }
  if (!model.has_graph()) {
    return InvalidArgument("not an ONNX model: the ModelProto has no graph");
  }
  const pb::GraphProto& graph = model.graph();

  OnnxGraph result;
  result.ir_version = model.ir_version();
  result.producer = model.producer_name();
  if (!model.producer_version().empty()) {
    result.producer += (result.producer.empty() ? "" : " ") + model.producer_version();
  }
  for (const pb::OperatorSetIdProto& opset : model.opset_import()) {
    if (opset.domain().empty() || opset.domain() == "ai.onnx") result.opset = opset.version();
  }

  std::unordered_set<std::string> initializers;
  for (const pb::TensorProto& t : graph.initializer()) initializers.insert(t.name());
  for (int i = 0; i < graph.input_size(); ++i) {
    // Before IR version 4 every initializer was also listed as an input.
    if (initializers.contains(graph.input(i).name())) continue;
    OnnxValue value;
    QUIVER_RETURN_IF_ERROR(ReadValue(graph.input(i), "graph input " + std::to_string(i), &value));
    result.inputs.push_back(std::move(value));
  }
  for (int i = 0; i < graph.output_size(); ++i) {
    OnnxValue value;
    QUIVER_RETURN_IF_ERROR(ReadValue(graph.output(i), "graph output " + std::to_string(i), &value));
    result.outputs.push_back(std::move(value));
  }
  if (result.inputs.empty()) {
    return InvalidArgument("the graph declares no inputs (besides its initializers)");
  }
  if (result.outputs.empty()) return InvalidArgument("the graph declares no outputs");
  return result;
}

std::optional<DataType> DataTypeOfOnnxType(int32_t elem_type) {
  const OnnxType* type = FindOnnxType(elem_type);
  return type == nullptr ? std::nullopt : type->datatype;
}

std::string OnnxTypeName(int32_t elem_type) {
  const OnnxType* type = FindOnnxType(elem_type);
  return type == nullptr ? "type " + std::to_string(elem_type) : type->name;
}

}  // namespace quiver::onnx_runtime
