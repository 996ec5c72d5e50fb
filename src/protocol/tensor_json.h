// Tensor values in JSON, shared by the v2 and V1 codecs: decoding (type and range checked, with
// field paths in errors) and encoding (flat or nested by shape). Internal to the protocol
// module. Pure functions.
#pragma once

#include <simdjson.h>

#include <string>

#include "common/status.h"
#include "protocol/json_writer.h"
#include "tensor/tensor.h"

namespace quiver::json {

using simdjson::dom::element;
using simdjson::dom::element_type;

// "malformed JSON body: ..." for a parse error, with a hint for numbers beyond 64 bits.
std::string ParseErrorMessage(simdjson::error_code error);

// "an array", "a number", ... for messages.
std::string TypeOf(const element& e);

// A JSON object of protocol parameters.
Status DecodeParameters(const element& e, const std::string& path, Parameters* out);
void WriteParameters(const Parameters& params, JsonWriter& w);

// Flattens `data` (nested or flat arrays, or a scalar) into `count` elements of `type`.
// `body_size` bounds the allocation (each element takes at least one byte of JSON).
Status DecodeValues(const element& data, DataType type, const std::string& path, int64_t count,
                    size_t body_size, TensorData* out);

// The shape of a rectangular nested array (a scalar has shape []); error for ragged arrays.
Status ShapeOf(const element& data, const std::string& path, Shape* shape);

// The datatype that holds every scalar in `data`: BYTES for strings, BOOL for booleans, INT64
// for integers, FP64 once any number is fractional. Error for mixes (e.g. strings and numbers).
Status GuessDataType(const element& data, const std::string& path, DataType* type);

// Writes the tensor's values as a JSON array, flat or nested by its shape. Fails for FP16/BF16
// and for BYTES that are not UTF-8, which JSON cannot carry.
Status WriteValues(const Tensor& tensor, JsonWriter& w, bool nested);

// Writes the tensor's values of rows [row, row+1) (first dimension), nested, without the
// enclosing brackets of the batch dimension.
Status WriteRow(const Tensor& tensor, int64_t row, JsonWriter& w);

}  // namespace quiver::json
