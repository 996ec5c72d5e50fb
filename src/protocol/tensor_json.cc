#include "protocol/tensor_json.h"

#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

namespace quiver::json {
namespace {



std::string NumberText(const element& e) {
  switch (e.type()) {
    case element_type::INT64: return std::to_string(int64_t(e));
    case element_type::UINT64: return std::to_string(uint64_t(e));
    default: {
      std::string s;
      JsonWriter(&s).Double(double(e), /*keep_point=*/true);
      return s;
    }
  }
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

template <typename T>
void WriteFlat(const TensorData& data, size_t first, size_t n, JsonWriter& w) {
  const std::byte* p = data.data() + first * sizeof(T);
  for (size_t i = 0; i < n; ++i) {
    if (i) w.Char(',');
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    if constexpr (std::is_same_v<T, bool>) {
      w.Bool(v);
    } else if constexpr (std::is_same_v<T, float>) {
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

// Writes elements [first, first+n) of a tensor, flat.
Status WriteSpan(const Tensor& t, size_t first, size_t n, JsonWriter& w) {
  switch (t.datatype) {
    case DataType::kBool: {
      const std::byte* p = t.data.data() + first;
      for (size_t k = 0; k < n; ++k) {
        if (k) w.Char(',');
        w.Bool(p[k] != std::byte{0});
      }
      return Status::Ok();
    }
    case DataType::kUint8: WriteFlat<uint8_t>(t.data, first, n, w); return Status::Ok();
    case DataType::kUint16: WriteFlat<uint16_t>(t.data, first, n, w); return Status::Ok();
    case DataType::kUint32: WriteFlat<uint32_t>(t.data, first, n, w); return Status::Ok();
    case DataType::kUint64: WriteFlat<uint64_t>(t.data, first, n, w); return Status::Ok();
    case DataType::kInt8: WriteFlat<int8_t>(t.data, first, n, w); return Status::Ok();
    case DataType::kInt16: WriteFlat<int16_t>(t.data, first, n, w); return Status::Ok();
    case DataType::kInt32: WriteFlat<int32_t>(t.data, first, n, w); return Status::Ok();
    case DataType::kInt64: WriteFlat<int64_t>(t.data, first, n, w); return Status::Ok();
    case DataType::kFp32: WriteFlat<float>(t.data, first, n, w); return Status::Ok();
    case DataType::kFp64: WriteFlat<double>(t.data, first, n, w); return Status::Ok();
    case DataType::kFp16:
    case DataType::kBf16:
      return InvalidArgument("output '" + t.name + "' is " + std::string(DataTypeName(t.datatype)) +
                             ", which JSON cannot carry; request it as binary data");
    case DataType::kBytes: {
      size_t index = 0, written = 0;
      Status bad;
      ForEachBytesElement(t.data, [&](std::string_view e) {
        size_t i = index++;
        if (!bad.ok() || i < first || i >= first + n) return;
        if (!simdjson::validate_utf8(e.data(), e.size())) {
          bad = InvalidArgument("output '" + t.name +
                                "' holds BYTES that are not UTF-8, which JSON cannot carry; "
                                "request it as binary data");
          return;
        }
        if (written++) w.Char(',');
        w.String(e);
      });
      return bad;
    }
  }
  return Internal("unknown datatype");
}

// Writes elements starting at `first` nested by shape[dim:].
Status WriteNested(const Tensor& t, size_t dim, size_t first, JsonWriter& w) {
  w.Char('[');
  if (dim + 1 >= t.shape.size()) {
    size_t n = t.shape.empty() ? 1 : static_cast<size_t>(t.shape[dim]);
    QUIVER_RETURN_IF_ERROR(WriteSpan(t, first, n, w));
  } else {
    size_t inner = 1;
    for (size_t d = dim + 1; d < t.shape.size(); ++d) inner *= static_cast<size_t>(t.shape[d]);
    for (int64_t i = 0; i < t.shape[dim]; ++i) {
      if (i) w.Char(',');
      QUIVER_RETURN_IF_ERROR(WriteNested(t, dim + 1, first + i * inner, w));
    }
  }
  w.Char(']');
  return Status::Ok();
}

void GuessWalk(const element& e, bool* str, bool* boolean, bool* integer, bool* fractional,
               bool* other) {
  switch (e.type()) {
    case element_type::ARRAY:
      for (element c : simdjson::dom::array(e)) GuessWalk(c, str, boolean, integer, fractional, other);
      return;
    case element_type::STRING: *str = true; return;
    case element_type::BOOL: *boolean = true; return;
    case element_type::INT64:
    case element_type::UINT64: *integer = true; return;
    case element_type::DOUBLE: *fractional = true; return;
    default: *other = true; return;
  }
}

}  // namespace

std::string ParseErrorMessage(simdjson::error_code error) {
  std::string m = std::string("malformed JSON body: ") + simdjson::error_message(error);
  if (error == simdjson::NUMBER_ERROR) {
    m += " (integers must fit in 64 bits; write larger numbers with a decimal point or exponent)";
  }
  return m;
}

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
      case element_type::UINT64: out->Set(key, uint64_t(v)); break;
      case element_type::DOUBLE: out->Set(key, double(v)); break;
      case element_type::STRING: out->Set(key, std::string(std::string_view(v))); break;
      default:
        return InvalidArgument(path + "." + key + ": expected a string, number or boolean, got " +
                               TypeOf(v));
    }
  }
  return Status::Ok();
}


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
          else if constexpr (std::is_same_v<X, uint64_t>) w.Uint(x);
          else if constexpr (std::is_same_v<X, double>) w.Double(x, /*keep_point=*/true);
          else w.String(x);
        },
        v);
  }
  w.Char('}');
}

Status DecodeValues(const element& data, DataType type, const std::string& path, int64_t count,
                    size_t body_size, TensorData* out) {
  if (type == DataType::kFp16 || type == DataType::kBf16) {
    return InvalidArgument(path + ": receiving " + std::string(DataTypeName(type)) +
                           " data via JSON is not supported; send it as binary data");
  }
  if (type == DataType::kBytes) {
    BytesTensorBuilder b;
    QUIVER_RETURN_IF_ERROR(DecodeBytes(data, path + ".data", &b));
    if (static_cast<int64_t>(b.count()) != count) {
      return InvalidArgument(path + ": shape needs " + std::to_string(count) +
                             " elements, got " + std::to_string(b.count()));
    }
    *out = b.Finish();
    return Status::Ok();
  }
  // Every JSON element takes at least one byte of the body, which bounds the allocation.
  if (static_cast<uint64_t>(count) > body_size) {
    return InvalidArgument(path + ": shape needs " + std::to_string(count) +
                           " elements, more than the " + std::to_string(body_size) +
                           "-byte body can hold");
  }
  TensorData buf = TensorData::Allocate(static_cast<size_t>(count) * DataTypeSize(type));
  DataFlattener flat(type, path + ".data", buf.mutable_data(), count);
  QUIVER_RETURN_IF_ERROR(flat.Walk(data));
  if (flat.count() != count) {
    return InvalidArgument(path + ": shape needs " + std::to_string(count) + " elements, got " +
                           std::to_string(flat.count()));
  }
  *out = std::move(buf);
  return Status::Ok();
}

Status ShapeOf(const element& data, const std::string& path, Shape* shape) {
  shape->clear();
  element e = data;
  while (e.type() == element_type::ARRAY) {
    simdjson::dom::array a(e);
    shape->push_back(static_cast<int64_t>(a.size()));
    if (a.size() == 0) break;
    e = *a.begin();
  }
  // Check every array at depth d has shape[d] children and scalars only at the bottom.
  struct Checker {
    const Shape& s;
    const std::string& path;
    Status Check(const element& x, size_t depth) {
      if (x.type() != element_type::ARRAY) {
        if (depth != s.size()) return Ragged();
        return Status::Ok();
      }
      simdjson::dom::array a(x);
      if (depth >= s.size() || static_cast<int64_t>(a.size()) != s[depth]) return Ragged();
      for (element c : a) QUIVER_RETURN_IF_ERROR(Check(c, depth + 1));
      return Status::Ok();
    }
    Status Ragged() {
      return InvalidArgument(path + ": expected a rectangular (non-ragged) array of shape " +
                             ShapeToString(s));
    }
  } checker{*shape, path};
  return checker.Check(data, 0);
}

Status GuessDataType(const element& data, const std::string& path, DataType* type) {
  bool str = false, boolean = false, integer = false, fractional = false, other = false;
  GuessWalk(data, &str, &boolean, &integer, &fractional, &other);
  int kinds = int(str) + int(boolean) + int(integer || fractional);
  if (other || kinds > 1) {
    return InvalidArgument(path + ": mixes value kinds (strings, booleans, numbers or "
                                  "objects); expected one kind");
  }
  if (str) *type = DataType::kBytes;
  else if (boolean) *type = DataType::kBool;
  else if (fractional) *type = DataType::kFp64;
  else *type = DataType::kInt64;
  return Status::Ok();
}

Status WriteValues(const Tensor& tensor, JsonWriter& w, bool nested) {
  if (nested && !tensor.shape.empty()) return WriteNested(tensor, 0, 0, w);
  w.Char('[');
  QUIVER_RETURN_IF_ERROR(WriteSpan(tensor, 0, static_cast<size_t>(tensor.element_count()), w));
  w.Char(']');
  return Status::Ok();
}

Status WriteRow(const Tensor& tensor, int64_t row, JsonWriter& w) {
  if (tensor.shape.empty()) return InvalidArgument("output '" + tensor.name + "' is a scalar");
  size_t inner = 1;
  for (size_t d = 1; d < tensor.shape.size(); ++d) inner *= static_cast<size_t>(tensor.shape[d]);
  if (tensor.shape.size() == 1) return WriteSpan(tensor, static_cast<size_t>(row), 1, w);
  return WriteNested(tensor, 1, static_cast<size_t>(row) * inner, w);
}

}  // namespace quiver::json
