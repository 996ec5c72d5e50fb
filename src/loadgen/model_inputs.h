// The inputs a load generator sends, built from what the server says about the model: metadata
// parsing (v2 REST JSON; gRPC metadata is converted by grpc_load.h), concrete shapes for
// variable dimensions, and the values: random (never zero for numbers), zeros, or read from a
// JSON file. Pure functions; randomness comes from the caller's generator.
#pragma once

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "tensor/infer.h"
#include "tensor/tensor.h"

namespace quiver::loadgen {

// GET /v2/models/{name}[/versions/{v}] as the Open Inference Protocol defines it.
struct ModelSpec {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// Parses a metadata response body; names the field that is missing or malformed.
StatusOr<ModelSpec> ParseModelMetadataJson(std::string_view json);

// `--shape NAME:D1,D2,...`
struct ShapeOverride {
  std::string name;
  Shape dims;
};
StatusOr<ShapeOverride> ParseShapeOverride(std::string_view flag);

// Gives every input a concrete shape. Fixed dimensions come from the metadata. An override of the
// input's full rank sets every dimension (fixed ones must agree); one of rank - 1 when the first
// dimension is variable sets the dimensions after it. Otherwise a variable first dimension is
// `batch_size` and the other variable dimensions are 1. A batch size above 1 needs a variable
// first dimension. Overrides naming no input are an error.
StatusOr<std::vector<TensorSpec>> ResolveInputShapes(const std::vector<TensorSpec>& inputs,
                                                     int64_t batch_size,
                                                     const std::vector<ShapeOverride>& overrides);

enum class InputValues { kRandom, kZero };

// One set of input tensors of the resolved specs. Random values: integers in [1, 100], floats in
// [2^-14, 1) (never 0, even as FP16), BOOL either, BYTES `string_length` random letters and
// digits. Zero values: 0, false, and BYTES of `string_length` '0' characters.
std::vector<Tensor> GenerateInputs(const std::vector<TensorSpec>& resolved, InputValues values,
                                   std::mt19937_64& rng, size_t string_length);

// Reads request inputs from a JSON file, one set per entry, in either form:
//  - perf_analyzer's: {"data": [{"INPUT0": [values], "INPUT1": {"content": [values],
//    "shape": [dims]}}, ...]} (values flat or nested; shape defaults to the resolved one);
//  - a v2 infer request body: {"inputs": [{"name", "shape", "datatype", "data"}, ...]}.
// Every model input must be present in every entry; values are checked against the datatype.
// When the model lists no inputs (it takes anything), a v2 body's tensors are taken as written.
StatusOr<std::vector<std::vector<Tensor>>> ReadInputDataFile(
    const std::filesystem::path& path, const std::vector<TensorSpec>& resolved);
// The same for the text of such a file (for tests).
StatusOr<std::vector<std::vector<Tensor>>> ParseInputData(std::string_view json,
                                                          const std::vector<TensorSpec>& resolved);

// IEEE half and bfloat16 bits of a float (round to nearest even).
uint16_t FloatToHalf(float f);
uint16_t FloatToBfloat16(float f);
float HalfToFloat(uint16_t h);

}  // namespace quiver::loadgen
