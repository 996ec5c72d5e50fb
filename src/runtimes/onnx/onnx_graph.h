// OnnxGraph: what an ONNX model file declares about itself (its inputs and outputs, opset and
// producer), read with the subset of onnx.proto in onnx_graph.proto. OpenCV dnn 4.6 parses
// the same file but exposes none of this. Pure functions; values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tensor/infer.h"

namespace quiver::onnx_runtime {

// One graph input or output as declared.
struct OnnxValue {
  std::string name;
  int32_t elem_type = 0;  // ONNX TensorProto.DataType (1 FLOAT, 7 INT64, 11 DOUBLE, ...)
  // False when the file gives no shape at all (the rank is unknown); `shape` is then empty.
  bool has_shape = false;
  Shape shape;  // -1 for a symbolic ("batch") or missing dimension
  // Per dimension, its symbolic name ("batch") or "" (a fixed or unnamed dimension).
  // Dimensions with the same name have the same size in every call.
  std::vector<std::string> dim_params;
};

struct OnnxGraph {
  int64_t ir_version = 0;
  std::string producer;           // "pytorch 1.13.1"
  int64_t opset = 0;              // version of the standard domain; 0 if not imported
  std::vector<OnnxValue> inputs;  // without initializers, in the graph's order
  std::vector<OnnxValue> outputs;
};

// Parses a serialized ModelProto. Errors (kInvalidArgument) say what is wrong without the file
// name, which the caller adds: not a protobuf ModelProto, no graph, no inputs or outputs, a
// value without a name or that is not a tensor. Accepts every element type; the caller decides
// which it serves.
StatusOr<OnnxGraph> ParseOnnxGraph(std::string_view bytes);

// The protocol datatype of an ONNX element type, or nullopt for types with no protocol
// equivalent (STRING, complex, FLOAT8, unknown numbers).
std::optional<DataType> DataTypeOfOnnxType(int32_t elem_type);

// "FLOAT", "INT64", ... as onnx.proto spells them; "type 42" for unknown numbers.
std::string OnnxTypeName(int32_t elem_type);

}  // namespace quiver::onnx_runtime
