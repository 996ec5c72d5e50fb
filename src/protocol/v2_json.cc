#include "protocol/v2_json.h"

#include <simdjson.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "protocol/json_writer.h"

namespace quiver {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string TypeOf(const element& e) {
  switch (e.type()) {
    case element_type::ARRAY: return "an array";
    case element_type::OBJECT: return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "a number";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

std::string NumberText(const element& e) {
  switch (e.type()) {
    case element_type::INT64: return std::to_string(int64_t(e));
    case element_type::UINT64: return std::to_string(uint64_t(e));
    default: {
      std::string s;
      JsonWriter(&s).Double(double(e));
      return s;
    }
  }
}

Status DecodeParameters(const element& e, const std::string& path, Parameters* out) {
  simdjson::dom::object obj;
  if (e.get(obj) != simdjson::SUCCESS) {
    return InvalidArgument(path + ": expected an object, got " + TypeOf(e));
  }
  for (auto field : obj) {
    const element& v = field.value;
    std::string key(field.key);
    switch (v.type()) {
      case element_type::BOOL: out->Set(key, bool(v)); break;
      case element_type::INT64: out->Set(key, int64_t(v)); break;
      case element_type::UINT64: out->Set(key, static_cast<double>(uint64_t(v))); break;
      case element_type::DOUBLE: out->Set(key, double(v)); break;
      case element_type::STRING: out->Set(key, std::string(std::string_view(v))); break;
      default:
        return InvalidArgument(path + "." + key + ": expected a string, number or boolean, got " +
                               TypeOf(v));
    }
  }
  return Status::Ok();
}

// Writes flattened JSON data into a fixed-size buffer, checking types and ranges.
class DataFlattener {
 public:
  DataFlattener(DataType type, std::string path, std::byte* out, int64_t expected)
      : type_(type), path_(std::move(path)), out_(out), expected_(expected) {}

  Status Walk(const element& e) {
    if (e.type() == element_type::ARRAY) {
      for (element child : simdjson::dom::array(e)) {
        QUIVER_RETURN_IF_ERROR(Walk(child));
      }
      return Status::Ok();
    }
    if (count_ >= expected_) {
      ++count_;
      return Status::Ok();  // counted only; the size error is reported once at the end
    }
    QUIVER_RETURN_IF_ERROR(Put(e));
    ++count_;
    return Status::Ok();
  }

  int64_t count() const { return count_; }

 private:
  std::string Where() const { return path_ + "[" + std::to_string(count_) + "]"; }

  template <typename T>
  void Store(T v) {
    std::memcpy(out_ + count_ * sizeof(T), &v, sizeof(T));
  }

  template <typename T>
  Status PutInteger(const element& e) {
    if (e.type() == element_type::INT64) {
      int64_t v = int64_t(e);
      if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          (v > 0 && static_cast<uint64_t>(v) > std::numeric_limits<T>::max())) {
        return OutOfRange(e);
      }
      Store(static_cast<T>(v));
      return Status::Ok();
    }
    if (e.type() == element_type::UINT64) {
      uint64_t v = uint64_t(e);
      if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return OutOfRange(e);
      Store(static_cast<T>(v));
      return Status::Ok();
    }
    if (e.type() == element_type::DOUBLE) {
      return InvalidArgument(Where() + ": expected an integer for " +
                             std::string(DataTypeName(type_)) + ", got " + NumberText(e));
    }
    return WrongType(e, "an integer");
  }

  Status OutOfRange(const element& e) {
    return InvalidArgument(Where() + ": value " + NumberText(e) + " is out of range for " +
                           std::string(DataTypeName(type_)));
  }

  Status WrongType(const element& e, const char* want) {
    return InvalidArgument(Where() + ": expected " + want + " for " +
                           std::string(DataTypeName(type_)) + ", got " + TypeOf(e));
  }

  Status Put(const element& e) {
    switch (type_) {
      case DataType::kBool:
        if (e.type() != element_type::BOOL) return WrongType(e, "true or false");
        Store<uint8_t>(bool(e) ? 1 : 0);
        return Status::Ok();
      case DataType::kUint8: return PutInteger<uint8_t>(e);
      case DataType::kUint16: return PutInteger<uint16_t>(e);
      case DataType::kUint32: return PutInteger<uint32_t>(e);
      case DataType::kUint64: return PutInteger<uint64_t>(e);
      case DataType::kInt8: return PutInteger<int8_t>(e);
      case DataType::kInt16: return PutInteger<int16_t>(e);
      case DataType::kInt32: return PutInteger<int32_t>(e);
      case DataType::kInt64: return PutInteger<int64_t>(e);
      case DataType::kFp32:
      case DataType::kFp64: {
        double v;
        switch (e.type()) {
          case element_type::INT64: v = static_cast<double>(int64_t(e)); break;
          case element_type::UINT64: v = static_cast<double>(uint64_t(e)); break;
          case element_type::DOUBLE: v = double(e); break;
          default: return WrongType(e, "a number");
        }
        if (type_ == DataType::kFp64) {
          Store(v);
        } else {
          if (std::fabs(v) > FLT_MAX) return OutOfRange(e);
          Store(static_cast<float>(v));
        }
        return Status::Ok();
      }
      default:
        return Internal("unexpected datatype in JSON decoding");
    }
  }

  DataType type_;
  std::string path_;
  std::byte* out_;
  int64_t expected_;
  int64_t count_ = 0;
};

Status DecodeBytes(const element& e, const std::string& path, BytesTensorBuilder* b) {
  if (e.type() == element_type::ARRAY) {
    for (element child : simdjson::dom::array(e)) {
      QUIVER_RETURN_IF_ERROR(DecodeBytes(child, path, b));
    }
    return Status::Ok();
  }
  if (e.type() != element_type::STRING) {
    return InvalidArgument(path + "[" + std::to_string(b->count()) +
                           "]: expected a string for BYTES, got " + TypeOf(e));
  }
  b->Append(std::string_view(e));
  return Status::Ok();
}

Status DecodeInput(const element& e, const std::string& path, size_t body_size, Tensor* t) {
  simdjson::dom::object obj;
  if (e.get(obj) != simdjson::SUCCESS) {
    return InvalidArgument(path + ": expected an object, got " + TypeOf(e));
  }
  element name, shape, datatype, data, params;
  if (obj["name"].get(name) != simdjson::SUCCESS) {
    return InvalidArgument(path + ".name: required");
  }
  if (name.type() != element_type::STRING) {
    return InvalidArgument(path + ".name: expected a string, got " + TypeOf(name));
  }
  t->name = std::string(std::string_view(name));
  if (obj["shape"].get(shape) != simdjson::SUCCESS) {
    return InvalidArgument(path + ".shape: required");
  }
  if (shape.type() != element_type::ARRAY) {
    return InvalidArgument(path + ".shape: expected an array of integers, got " + TypeOf(shape));
  }
  for (element d : simdjson::dom::array(shape)) {
    if (d.type() == element_type::INT64 && int64_t(d) >= 0) {
      t->shape.push_back(int64_t(d));
    } else {
      std::string got = d.type() == element_type::INT64 || d.type() == element_type::DOUBLE ||
                                d.type() == element_type::UINT64
                            ? NumberText(d)
                            : TypeOf(d);
      return InvalidArgument(path + ".shape[" + std::to_string(t->shape.size()) +
                             "]: expected a non-negative integer, got " + got);
    }
  }
  if (obj["datatype"].get(datatype) != simdjson::SUCCESS) {
    return InvalidArgument(path + ".datatype: required");
  }
  if (datatype.type() != element_type::STRING) {
    return InvalidArgument(path + ".datatype: expected a string, got " + TypeOf(datatype));
  }
  auto dt = ParseDataType(std::string_view(datatype));
  if (!dt) {
    return InvalidArgument(path + ".datatype: unknown datatype '" +
                           std::string(std::string_view(datatype)) +
                           "'; expected one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, "
                           "INT32, INT64, FP16, FP32, FP64, BF16, BYTES");
  }
  t->datatype = *dt;
  if (obj["parameters"].get(params) == simdjson::SUCCESS &&
      params.type() != element_type::NULL_VALUE) {
    QUIVER_RETURN_IF_ERROR(DecodeParameters(params, path + ".parameters", &t->parameters));
  }
  int64_t count = ElementCount(t->shape);
  if (count < 0) {
    return InvalidArgument(path + ".shape: " + ShapeToString(t->shape) + " is too large");
  }
  if (obj["data"].get(data) != simdjson::SUCCESS) {
    return InvalidArgument(path + ".data: required");
  }
  if (*dt == DataType::kFp16 || *dt == DataType::kBf16) {
    return InvalidArgument(path + ": receiving " + std::string(DataTypeName(*dt)) +
                           " data via JSON is not supported; send it as binary data");
  }
  if (*dt == DataType::kBytes) {
    BytesTensorBuilder b;
    QUIVER_RETURN_IF_ERROR(DecodeBytes(data, path + ".data", &b));
    if (static_cast<int64_t>(b.count()) != count) {
      return InvalidArgument(path + ": shape " + ShapeToString(t->shape) + " needs " +
                             std::to_string(count) + " elements, got " +
                             std::to_string(b.count()));
    }
    t->data = b.Finish();
    return Status::Ok();
  }
  size_t elem = DataTypeSize(*dt);
  // Every JSON element takes at least one byte of the body, which bounds the allocation.
  if (static_cast<uint64_t>(count) > body_size) {
    return InvalidArgument(path + ": shape " + ShapeToString(t->shape) + " needs " +
                           std::to_string(count) + " elements, more than the " +
                           std::to_string(body_size) + "-byte body can hold");
  }
  int64_t capacity = count;
  TensorData buf = TensorData::Allocate(static_cast<size_t>(capacity) * elem);
  DataFlattener flat(*dt, path + ".data", buf.mutable_data(), capacity);
  QUIVER_RETURN_IF_ERROR(flat.Walk(data));
  if (flat.count() != count) {
    return InvalidArgument(path + ": shape " + ShapeToString(t->shape) + " needs " +
                           std::to_string(count) + " elements, got " +
                           std::to_string(flat.count()));
  }
  t->data = std::move(buf);
  return Status::Ok();
}

template <typename T>
void WriteValues(const TensorData& data, JsonWriter& w) {
  const std::byte* p = data.data();
  size_t n = data.size() / sizeof(T);
  for (size_t i = 0; i < n; ++i) {
    if (i) w.Char(',');
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    if constexpr (std::is_same_v<T, float>) {
      w.Float(v);
    } else if constexpr (std::is_same_v<T, double>) {
      w.Double(v);
    } else if constexpr (std::is_signed_v<T>) {
      w.Int(v);
    } else {
      w.Uint(v);
    }
  }
}

}  // namespace

void WriteParameters(const Parameters& params, JsonWriter& w) {
  w.Char('{');
  bool first = true;
  for (const auto& [k, v] : params) {
    if (!first) w.Char(',');
    first = false;
    w.Key(k);
    std::visit(
        [&](const auto& x) {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, bool>) w.Bool(x);
          else if constexpr (std::is_same_v<X, int64_t>) w.Int(x);
          else if constexpr (std::is_same_v<X, double>) w.Double(x, /*keep_point=*/true);
          else w.String(x);
        },
        v);
  }
  w.Char('}');
}

Status DecodeV2Request(std::string_view body, InferRequest* request) {
  thread_local simdjson::dom::parser parser;
  element root;
  auto err = parser.parse(body.data(), body.size(), /*realloc_if_needed=*/true).get(root);
  if (err != simdjson::SUCCESS) {
    return InvalidArgument(std::string("malformed JSON body: ") + simdjson::error_message(err));
  }
  simdjson::dom::object obj;
  if (root.get(obj) != simdjson::SUCCESS) {
    return InvalidArgument("request body: expected a JSON object, got " + TypeOf(root));
  }
  element id, params, inputs, outputs;
  if (obj["id"].get(id) == simdjson::SUCCESS && id.type() != element_type::NULL_VALUE) {
    if (id.type() != element_type::STRING) {
      return InvalidArgument("id: expected a string, got " + TypeOf(id));
    }
    request->id = std::string(std::string_view(id));
  }
  if (obj["parameters"].get(params) == simdjson::SUCCESS &&
      params.type() != element_type::NULL_VALUE) {
    QUIVER_RETURN_IF_ERROR(DecodeParameters(params, "parameters", &request->parameters));
  }
  if (obj["inputs"].get(inputs) != simdjson::SUCCESS) {
    return InvalidArgument("inputs: required");
  }
  if (inputs.type() != element_type::ARRAY) {
    return InvalidArgument("inputs: expected an array, got " + TypeOf(inputs));
  }
  size_t i = 0;
  for (element in : simdjson::dom::array(inputs)) {
    Tensor t;
    QUIVER_RETURN_IF_ERROR(DecodeInput(in, "inputs[" + std::to_string(i) + "]", body.size(), &t));
    request->inputs.push_back(std::move(t));
    ++i;
  }
  if (obj["outputs"].get(outputs) == simdjson::SUCCESS &&
      outputs.type() != element_type::NULL_VALUE) {
    if (outputs.type() != element_type::ARRAY) {
      return InvalidArgument("outputs: expected an array, got " + TypeOf(outputs));
    }
    size_t j = 0;
    for (element out : simdjson::dom::array(outputs)) {
      std::string path = "outputs[" + std::to_string(j++) + "]";
      simdjson::dom::object o;
      if (out.get(o) != simdjson::SUCCESS) {
        return InvalidArgument(path + ": expected an object, got " + TypeOf(out));
      }
      element name, oparams;
      if (o["name"].get(name) != simdjson::SUCCESS || name.type() != element_type::STRING) {
        return InvalidArgument(path + ".name: required string");
      }
      RequestedOutput ro;
      ro.name = std::string(std::string_view(name));
      if (o["parameters"].get(oparams) == simdjson::SUCCESS &&
          oparams.type() != element_type::NULL_VALUE) {
        QUIVER_RETURN_IF_ERROR(DecodeParameters(oparams, path + ".parameters", &ro.parameters));
      }
      request->outputs.push_back(std::move(ro));
    }
  }
  return Status::Ok();
}

Status EncodeV2Response(const InferResponse& response, std::string* out) {
  JsonWriter w(out);
  w.Raw("{\"model_name\":");
  w.String(response.model_name);
  w.Raw(",\"model_version\":");
  w.String(response.model_version);
  w.Raw(",\"id\":");
  w.String(response.id);
  if (!response.parameters.empty()) {
    w.Raw(",\"parameters\":");
    WriteParameters(response.parameters, w);
  }
  w.Raw(",\"outputs\":[");
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    const Tensor& t = response.outputs[i];
    if (i) w.Char(',');
    w.Raw("{\"name\":");
    w.String(t.name);
    w.Raw(",\"datatype\":\"");
    w.Raw(DataTypeName(t.datatype));
    w.Raw("\",\"shape\":[");
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (d) w.Char(',');
      w.Int(t.shape[d]);
    }
    w.Char(']');
    if (!t.parameters.empty()) {
      w.Raw(",\"parameters\":");
      WriteParameters(t.parameters, w);
    }
    w.Raw(",\"data\":[");
    switch (t.datatype) {
      case DataType::kBool: {
        const std::byte* p = t.data.data();
        for (size_t k = 0; k < t.data.size(); ++k) {
          if (k) w.Char(',');
          w.Bool(p[k] != std::byte{0});
        }
        break;
      }
      case DataType::kUint8: WriteValues<uint8_t>(t.data, w); break;
      case DataType::kUint16: WriteValues<uint16_t>(t.data, w); break;
      case DataType::kUint32: WriteValues<uint32_t>(t.data, w); break;
      case DataType::kUint64: WriteValues<uint64_t>(t.data, w); break;
      case DataType::kInt8: WriteValues<int8_t>(t.data, w); break;
      case DataType::kInt16: WriteValues<int16_t>(t.data, w); break;
      case DataType::kInt32: WriteValues<int32_t>(t.data, w); break;
      case DataType::kInt64: WriteValues<int64_t>(t.data, w); break;
      case DataType::kFp32: WriteValues<float>(t.data, w); break;
      case DataType::kFp64: WriteValues<double>(t.data, w); break;
      case DataType::kFp16:
      case DataType::kBf16:
        return InvalidArgument("output '" + t.name + "' is " +
                               std::string(DataTypeName(t.datatype)) +
                               ", which JSON cannot carry; request it as binary data");
      case DataType::kBytes: {
        bool first = true;
        Status bad;
        ForEachBytesElement(t.data, [&](std::string_view e) {
          if (!bad.ok()) return;
          if (!simdjson::validate_utf8(e.data(), e.size())) {
            bad = InvalidArgument("output '" + t.name +
                                  "' holds BYTES that are not UTF-8, which JSON cannot carry; "
                                  "request it as binary data");
            return;
          }
          if (!first) w.Char(',');
          first = false;
          w.String(e);
        });
        QUIVER_RETURN_IF_ERROR(bad);
        break;
      }
    }
    w.Raw("]}");
  }
  w.Raw("]}");
  return Status::Ok();
}

}  // namespace quiver
