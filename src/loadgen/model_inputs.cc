#include "loadgen/model_inputs.h"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

namespace quiver::loadgen {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

std::string ErrorText(simdjson::error_code e) { return simdjson::error_message(e); }

StatusOr<std::string> GetString(const object& obj, std::string_view key, const std::string& path,
                                bool required) {
  element e;
  if (obj[key].get(e) != simdjson::SUCCESS) {
    if (required) return InvalidArgument(path + "." + std::string(key) + ": missing");
    return std::string();
  }
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) {
    return InvalidArgument(path + "." + std::string(key) + ": expected a string");
  }
  return std::string(s);
}

StatusOr<Shape> GetShape(const element& e, const std::string& path) {
  array a;
  if (e.get(a) != simdjson::SUCCESS) return InvalidArgument(path + ": expected an array");
  Shape shape;
  size_t i = 0;
  for (element d : a) {
    int64_t v;
    if (d.get(v) != simdjson::SUCCESS || v < -1) {
      return InvalidArgument(path + "[" + std::to_string(i) + "]: expected an integer >= -1");
    }
    shape.push_back(v);
    ++i;
  }
  return shape;
}

StatusOr<std::vector<TensorSpec>> GetTensorSpecs(const object& root, std::string_view key,
                                                 bool required) {
  element e;
  std::vector<TensorSpec> specs;
  if (root[key].get(e) != simdjson::SUCCESS) {
    if (required) return InvalidArgument(std::string(key) + ": missing");
    return specs;
  }
  array a;
  if (e.get(a) != simdjson::SUCCESS)
    return InvalidArgument(std::string(key) + ": expected an array");
  size_t i = 0;
  for (element t : a) {
    std::string path = std::string(key) + "[" + std::to_string(i++) + "]";
    object obj;
    if (t.get(obj) != simdjson::SUCCESS) return InvalidArgument(path + ": expected an object");
    TensorSpec spec;
    QUIVER_ASSIGN_OR_RETURN(spec.name, GetString(obj, "name", path, true));
    QUIVER_ASSIGN_OR_RETURN(std::string type, GetString(obj, "datatype", path, true));
    auto dt = ParseDataType(type);
    if (!dt) return InvalidArgument(path + ".datatype: unknown datatype '" + type + "'");
    spec.datatype = *dt;
    element shape;
    if (obj["shape"].get(shape) != simdjson::SUCCESS) {
      return InvalidArgument(path + ".shape: missing");
    }
    QUIVER_ASSIGN_OR_RETURN(spec.shape, GetShape(shape, path + ".shape"));
    specs.push_back(std::move(spec));
  }
  return specs;
}

template <typename T>
void Put(std::byte* dst, T v) {
  std::memcpy(dst, &v, sizeof(T));
}

// Stores an integer of the given type; the caller checked the range.
void PutInteger(DataType type, int64_t v, std::byte* dst) {
  switch (type) {
    case DataType::kUint8:
      Put(dst, static_cast<uint8_t>(v));
      break;
    case DataType::kUint16:
      Put(dst, static_cast<uint16_t>(v));
      break;
    case DataType::kUint32:
      Put(dst, static_cast<uint32_t>(v));
      break;
    case DataType::kUint64:
      Put(dst, static_cast<uint64_t>(v));
      break;
    case DataType::kInt8:
      Put(dst, static_cast<int8_t>(v));
      break;
    case DataType::kInt16:
      Put(dst, static_cast<int16_t>(v));
      break;
    case DataType::kInt32:
      Put(dst, static_cast<int32_t>(v));
      break;
    case DataType::kInt64:
      Put(dst, v);
      break;
    default:
      break;
  }
}

void PutFloat(DataType type, double v, std::byte* dst) {
  switch (type) {
    case DataType::kFp16:
      Put(dst, FloatToHalf(static_cast<float>(v)));
      break;
    case DataType::kBf16:
      Put(dst, FloatToBfloat16(static_cast<float>(v)));
      break;
    case DataType::kFp32:
      Put(dst, static_cast<float>(v));
      break;
    case DataType::kFp64:
      Put(dst, v);
      break;
    default:
      break;
  }
}

// The range of an integer datatype.
void IntegerRange(DataType type, int64_t* lo, uint64_t* hi) {
  switch (type) {
    case DataType::kUint8:
      *lo = 0;
      *hi = UINT8_MAX;
      break;
    case DataType::kUint16:
      *lo = 0;
      *hi = UINT16_MAX;
      break;
    case DataType::kUint32:
      *lo = 0;
      *hi = UINT32_MAX;
      break;
    case DataType::kUint64:
      *lo = 0;
      *hi = UINT64_MAX;
      break;
    case DataType::kInt8:
      *lo = INT8_MIN;
      *hi = INT8_MAX;
      break;
    case DataType::kInt16:
      *lo = INT16_MIN;
      *hi = INT16_MAX;
      break;
    case DataType::kInt32:
      *lo = INT32_MIN;
      *hi = INT32_MAX;
      break;
    default:
      *lo = INT64_MIN;
      *hi = INT64_MAX;
      break;
  }
}

// Appends the scalars of a (possibly nested) JSON array, or a lone scalar, to `out`.
void Flatten(const element& e, std::vector<element>* out) {
  array a;
  if (e.get(a) == simdjson::SUCCESS) {
    for (element child : a) Flatten(child, out);
  } else {
    out->push_back(e);
  }
}

// Converts JSON values to a tensor of `type`; `path` names the field in errors.
StatusOr<TensorData> ConvertValues(const std::vector<element>& values, DataType type,
                                   const std::string& path) {
  if (type == DataType::kBytes) {
    BytesTensorBuilder b;
    for (size_t i = 0; i < values.size(); ++i) {
      std::string_view s;
      if (values[i].get(s) != simdjson::SUCCESS) {
        return InvalidArgument(path + "[" + std::to_string(i) + "]: expected a string for BYTES");
      }
      b.Append(s);
    }
    return b.Finish();
  }
  size_t size = DataTypeSize(type);
  TensorData data = TensorData::Allocate(values.size() * size);
  std::byte* dst = data.mutable_data();
  for (size_t i = 0; i < values.size(); ++i, dst += size) {
    const element& v = values[i];
    auto where = [&] { return path + "[" + std::to_string(i) + "]"; };
    if (type == DataType::kBool) {
      bool b;
      if (v.get(b) != simdjson::SUCCESS)
        return InvalidArgument(where() + ": expected true or false");
      Put(dst, static_cast<uint8_t>(b));
    } else if (IsFloat(type)) {
      double d;
      if (v.get(d) != simdjson::SUCCESS) return InvalidArgument(where() + ": expected a number");
      PutFloat(type, d, dst);
    } else {
      int64_t lo;
      uint64_t hi;
      IntegerRange(type, &lo, &hi);
      int64_t s;
      uint64_t u;
      bool fits;
      if (v.type() == element_type::UINT64 && v.get(u) == simdjson::SUCCESS) {
        fits = u <= hi;
        s = static_cast<int64_t>(u);
      } else if (v.get(s) == simdjson::SUCCESS) {
        fits = s >= lo && (s < 0 || static_cast<uint64_t>(s) <= hi);
      } else {
        return InvalidArgument(where() + ": expected an integer");
      }
      if (!fits) {
        return InvalidArgument(where() + ": value is out of range for " +
                               std::string(DataTypeName(type)));
      }
      PutInteger(type, s, dst);
    }
  }
  return data;
}

const TensorSpec* FindSpec(const std::vector<TensorSpec>& specs, std::string_view name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Builds one tensor of `spec` from a JSON value (`values`) and an optional shape.
StatusOr<Tensor> TensorFromJson(const TensorSpec& spec, const element& values, const Shape* shape,
                                const std::string& path) {
  std::vector<element> flat;
  Flatten(values, &flat);
  Tensor t{spec.name, spec.datatype, shape ? *shape : spec.shape, {}, {}};
  if (static_cast<int64_t>(flat.size()) != t.element_count()) {
    return InvalidArgument(path + ": " + std::to_string(flat.size()) + " values for shape " +
                           ShapeToString(t.shape) + ", which needs " +
                           std::to_string(t.element_count()));
  }
  QUIVER_ASSIGN_OR_RETURN(t.data, ConvertValues(flat, spec.datatype, path));
  return t;
}

StatusOr<std::vector<Tensor>> PerfAnalyzerEntry(const element& entry, size_t index,
                                                const std::vector<TensorSpec>& resolved) {
  std::string path = "data[" + std::to_string(index) + "]";
  object obj;
  if (entry.get(obj) != simdjson::SUCCESS) return InvalidArgument(path + ": expected an object");
  std::vector<Tensor> set;
  for (const TensorSpec& spec : resolved) {
    element v;
    std::string input_path = path + "." + spec.name;
    if (obj[spec.name].get(v) != simdjson::SUCCESS) {
      return InvalidArgument(input_path + ": missing (every entry needs every model input)");
    }
    object with_shape;
    if (v.get(with_shape) == simdjson::SUCCESS) {
      element content, shape_e;
      if (with_shape["content"].get(content) != simdjson::SUCCESS) {
        return InvalidArgument(input_path + ".content: missing (\"b64\" is not supported)");
      }
      Shape shape;
      bool has_shape = with_shape["shape"].get(shape_e) == simdjson::SUCCESS;
      if (has_shape) {
        QUIVER_ASSIGN_OR_RETURN(shape, GetShape(shape_e, input_path + ".shape"));
      }
      QUIVER_ASSIGN_OR_RETURN(Tensor t, TensorFromJson(spec, content, has_shape ? &shape : nullptr,
                                                       input_path + ".content"));
      set.push_back(std::move(t));
    } else {
      QUIVER_ASSIGN_OR_RETURN(Tensor t, TensorFromJson(spec, v, nullptr, input_path));
      set.push_back(std::move(t));
    }
  }
  return set;
}

StatusOr<std::vector<Tensor>> V2RequestInputs(const element& inputs,
                                              const std::vector<TensorSpec>& resolved) {
  array a;
  if (inputs.get(a) != simdjson::SUCCESS) return InvalidArgument("inputs: expected an array");
  std::vector<Tensor> set;
  size_t i = 0;
  for (element t : a) {
    std::string path = "inputs[" + std::to_string(i++) + "]";
    object obj;
    if (t.get(obj) != simdjson::SUCCESS) return InvalidArgument(path + ": expected an object");
    QUIVER_ASSIGN_OR_RETURN(std::string name, GetString(obj, "name", path, true));
    QUIVER_ASSIGN_OR_RETURN(std::string type, GetString(obj, "datatype", path, false));
    const TensorSpec* spec = FindSpec(resolved, name);
    // A model whose metadata lists no inputs (one that takes anything, as echo) gets the
    // request's own tensors, typed by their "datatype".
    TensorSpec free_spec;
    if (spec == nullptr && resolved.empty()) {
      auto dt = ParseDataType(type);
      if (!dt) return InvalidArgument(path + ".datatype: missing or unknown ('" + type + "')");
      free_spec = {name, *dt, {}};
      spec = &free_spec;
    }
    if (spec == nullptr) {
      return InvalidArgument(path + ".name: the model has no input '" + name + "'");
    }
    if (!type.empty() && type != DataTypeName(spec->datatype)) {
      return InvalidArgument(path + ".datatype: " + type + ", but the model's input '" + name +
                             "' is " + std::string(DataTypeName(spec->datatype)));
    }
    element shape_e, data;
    Shape shape;
    bool has_shape = obj["shape"].get(shape_e) == simdjson::SUCCESS;
    if (has_shape) {
      QUIVER_ASSIGN_OR_RETURN(shape, GetShape(shape_e, path + ".shape"));
    }
    if (obj["data"].get(data) != simdjson::SUCCESS) return InvalidArgument(path + ".data: missing");
    if (!has_shape && spec == &free_spec) return InvalidArgument(path + ".shape: missing");
    QUIVER_ASSIGN_OR_RETURN(
        Tensor tensor, TensorFromJson(*spec, data, has_shape ? &shape : nullptr, path + ".data"));
    set.push_back(std::move(tensor));
  }
  for (const TensorSpec& spec : resolved) {
    bool found = false;
    for (const Tensor& t : set) found |= t.name == spec.name;
    if (!found) return InvalidArgument("inputs: the model's input '" + spec.name + "' is missing");
  }
  return set;
}

}  // namespace

StatusOr<ModelSpec> ParseModelMetadataJson(std::string_view json) {
  simdjson::dom::parser parser;
  element root;
  auto err = parser.parse(json.data(), json.size()).get(root);
  if (err != simdjson::SUCCESS)
    return InvalidArgument("malformed metadata JSON: " + ErrorText(err));
  object obj;
  if (root.get(obj) != simdjson::SUCCESS) return InvalidArgument("metadata: expected an object");
  ModelSpec spec;
  QUIVER_ASSIGN_OR_RETURN(spec.name, GetString(obj, "name", "metadata", true));
  QUIVER_ASSIGN_OR_RETURN(spec.platform, GetString(obj, "platform", "metadata", false));
  element versions;
  if (obj["versions"].get(versions) == simdjson::SUCCESS) {
    array a;
    if (versions.get(a) == simdjson::SUCCESS) {
      for (element v : a) {
        std::string_view s;
        if (v.get(s) == simdjson::SUCCESS) spec.versions.emplace_back(s);
      }
    }
  }
  QUIVER_ASSIGN_OR_RETURN(spec.inputs, GetTensorSpecs(obj, "inputs", true));
  QUIVER_ASSIGN_OR_RETURN(spec.outputs, GetTensorSpecs(obj, "outputs", false));
  return spec;
}

StatusOr<ShapeOverride> ParseShapeOverride(std::string_view flag) {
  size_t colon = flag.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == flag.size()) {
    return InvalidArgument("--shape '" + std::string(flag) + "': expected NAME:D1,D2,...");
  }
  ShapeOverride o;
  o.name = std::string(flag.substr(0, colon));
  std::string_view dims = flag.substr(colon + 1);
  size_t pos = 0;
  while (pos <= dims.size()) {
    size_t comma = dims.find(',', pos);
    std::string_view d = dims.substr(pos, comma == dims.npos ? dims.npos : comma - pos);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(d.data(), d.data() + d.size(), v);
    if (d.empty() || ec != std::errc() || ptr != d.data() + d.size() || v < 1) {
      return InvalidArgument("--shape '" + std::string(flag) +
                             "': dimensions must be whole numbers >= 1");
    }
    o.dims.push_back(v);
    if (comma == dims.npos) break;
    pos = comma + 1;
  }
  return o;
}

StatusOr<std::vector<TensorSpec>> ResolveInputShapes(const std::vector<TensorSpec>& inputs,
                                                     int64_t batch_size,
                                                     const std::vector<ShapeOverride>& overrides) {
  for (const auto& o : overrides) {
    if (FindSpec(inputs, o.name) == nullptr) {
      std::string names;
      for (const auto& in : inputs) names += (names.empty() ? "" : ", ") + in.name;
      return InvalidArgument("--shape " + o.name +
                             ": the model has no such input (inputs: " + names + ")");
    }
  }
  std::vector<TensorSpec> out;
  for (const TensorSpec& in : inputs) {
    TensorSpec r = in;
    const ShapeOverride* o = nullptr;
    for (const auto& candidate : overrides) {
      if (candidate.name == in.name) o = &candidate;
    }
    const size_t rank = in.shape.size();
    bool batch_dim = rank > 0 && in.shape[0] == -1;
    if (o != nullptr) {
      size_t offset;
      if (o->dims.size() == rank) {
        offset = 0;
      } else if (batch_dim && o->dims.size() + 1 == rank) {
        offset = 1;
        r.shape[0] = batch_size;
      } else {
        return InvalidArgument(
            "--shape " + in.name + ": " + std::to_string(o->dims.size()) +
            " dimensions, but the input's shape is " + ShapeToString(in.shape) + " (give all " +
            std::to_string(rank) +
            (batch_dim ? ", or the " + std::to_string(rank - 1) + " after the batch dimension"
                       : "") +
            ")");
      }
      for (size_t i = 0; i < o->dims.size(); ++i) {
        int64_t want = in.shape[i + offset];
        if (want >= 0 && want != o->dims[i]) {
          return InvalidArgument("--shape " + in.name + ": dimension " +
                                 std::to_string(i + offset) + " is " + std::to_string(o->dims[i]) +
                                 ", but the model fixes it at " + std::to_string(want) +
                                 " (shape " + ShapeToString(in.shape) + ")");
        }
        r.shape[i + offset] = o->dims[i];
      }
    } else {
      if (batch_size > 1 && !batch_dim) {
        return InvalidArgument("--batch-size " + std::to_string(batch_size) + ": input '" +
                               in.name + "' has shape " + ShapeToString(in.shape) +
                               ", whose first dimension is not variable, so the model does not "
                               "take batches");
      }
      for (size_t i = 0; i < rank; ++i) {
        if (r.shape[i] == -1) r.shape[i] = i == 0 ? batch_size : 1;
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Tensor> GenerateInputs(const std::vector<TensorSpec>& resolved, InputValues values,
                                   std::mt19937_64& rng, size_t string_length) {
  static constexpr std::string_view kAlphabet =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::uniform_int_distribution<int> small_int(1, 100);
  std::uniform_int_distribution<int> coin(0, 1);
  std::uniform_int_distribution<size_t> letter(0, kAlphabet.size() - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  // 2^-14 is FP16's smallest normal number: no value rounds to 0 in any float type.
  auto nonzero_fraction = [&] {
    double u;
    do {
      u = unit(rng);
    } while (u < 1.0 / 16384);
    return u;
  };
  const bool random = values == InputValues::kRandom;
  std::vector<Tensor> set;
  for (const TensorSpec& spec : resolved) {
    Tensor t{spec.name, spec.datatype, spec.shape, {}, {}};
    const auto count = static_cast<size_t>(std::max<int64_t>(t.element_count(), 0));
    if (spec.datatype == DataType::kBytes) {
      BytesTensorBuilder b;
      std::string s(string_length, '0');
      for (size_t i = 0; i < count; ++i) {
        if (random) {
          for (char& c : s) c = kAlphabet[letter(rng)];
        }
        b.Append(s);
      }
      t.data = b.Finish();
    } else {
      const size_t size = DataTypeSize(spec.datatype);
      t.data = TensorData::Allocate(count * size);
      std::byte* dst = t.data.mutable_data();
      std::memset(dst, 0, count * size);
      if (random) {
        for (size_t i = 0; i < count; ++i, dst += size) {
          if (spec.datatype == DataType::kBool) {
            Put(dst, static_cast<uint8_t>(coin(rng)));
          } else if (IsFloat(spec.datatype)) {
            PutFloat(spec.datatype, nonzero_fraction(), dst);
          } else {
            PutInteger(spec.datatype, small_int(rng), dst);
          }
        }
      }
    }
    set.push_back(std::move(t));
  }
  return set;
}

StatusOr<std::vector<std::vector<Tensor>>> ParseInputData(std::string_view json,
                                                          const std::vector<TensorSpec>& resolved) {
  simdjson::dom::parser parser;
  element root;
  auto err = parser.parse(json.data(), json.size()).get(root);
  if (err != simdjson::SUCCESS) return InvalidArgument("malformed JSON: " + ErrorText(err));
  object obj;
  if (root.get(obj) != simdjson::SUCCESS) return InvalidArgument("expected a JSON object");
  std::vector<std::vector<Tensor>> sets;
  element data, inputs;
  if (obj["data"].get(data) == simdjson::SUCCESS) {
    array a;
    if (data.get(a) != simdjson::SUCCESS) return InvalidArgument("data: expected an array");
    size_t i = 0;
    for (element entry : a) {
      QUIVER_ASSIGN_OR_RETURN(auto set, PerfAnalyzerEntry(entry, i++, resolved));
      sets.push_back(std::move(set));
    }
  } else if (obj["inputs"].get(inputs) == simdjson::SUCCESS) {
    QUIVER_ASSIGN_OR_RETURN(auto set, V2RequestInputs(inputs, resolved));
    sets.push_back(std::move(set));
  } else {
    return InvalidArgument(
        "expected {\"data\": [...]} (perf_analyzer's form) or a v2 request {\"inputs\": [...]}");
  }
  if (sets.empty()) return InvalidArgument("data: no entries");
  return sets;
}

StatusOr<std::vector<std::vector<Tensor>>> ReadInputDataFile(
    const std::filesystem::path& path, const std::vector<TensorSpec>& resolved) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("--input-data " + path.string() + ": cannot open the file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto sets = ParseInputData(buffer.str(), resolved);
  if (!sets.ok()) return sets.status().WithPrefix("--input-data " + path.string());
  return sets;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t exp = (x >> 23) & 0xff;
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant != 0 ? 0x200 : 0);  // inf, NaN
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return sign | 0x7c00;  // too large: infinity
  if (e <= 0) {                       // a subnormal half, or zero
    if (e < -10) return sign;
    mant |= 0x800000;
    const int shift = 14 - e;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // a carry rounds up to the next exponent
  return static_cast<uint16_t>(sign | h);
}

uint16_t FloatToBfloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

float HalfToFloat(uint16_t h) {
  const float sign = (h & 0x8000) ? -1.0f : 1.0f;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -24);
  if (exp == 31)
    return mant ? std::numeric_limits<float>::quiet_NaN()
                : sign * std::numeric_limits<float>::infinity();
  return sign * std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
}

}  // namespace quiver::loadgen
