#include "protocol/grpc_codec.h"

#include <cstring>
#include <limits>

namespace quiver {
namespace {

using google::protobuf::Map;
using google::protobuf::RepeatedField;
using inference::InferParameter;
using inference::InferTensorContents;

Status FromGrpcParameters(const Map<std::string, InferParameter>& in, const std::string& path,
                          Parameters* out) {
  // Map order is unspecified; sort by name so answers are stable.
  std::vector<const google::protobuf::MapPair<std::string, InferParameter>*> items;
  for (const auto& kv : in) items.push_back(&kv);
  std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (const auto* kv : items) {
    const InferParameter& p = kv->second;
    switch (p.parameter_choice_case()) {
      case InferParameter::kBoolParam: out->Set(kv->first, p.bool_param()); break;
      case InferParameter::kInt64Param: out->Set(kv->first, p.int64_param()); break;
      case InferParameter::kStringParam: out->Set(kv->first, p.string_param()); break;
      case InferParameter::kDoubleParam: out->Set(kv->first, p.double_param()); break;
      case InferParameter::kUint64Param:
        if (p.uint64_param() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          out->Set(kv->first, static_cast<int64_t>(p.uint64_param()));
        } else {
          out->Set(kv->first, p.uint64_param());
        }
        break;
      default:
        return InvalidArgument(path + "." + kv->first + ": parameter has no value");
    }
  }
  return Status::Ok();
}

template <typename T, typename Src>
Status CopyTyped(const RepeatedField<Src>& src, int64_t count, const std::string& path,
                 const char* field, TensorData* out) {
  if (src.size() != count) {
    return InvalidArgument(path + ": shape needs " + std::to_string(count) + " elements in " +
                           field + ", got " + std::to_string(src.size()));
  }
  TensorData buf = TensorData::Allocate(static_cast<size_t>(count) * sizeof(T));
  std::byte* p = buf.mutable_data();
  for (int64_t i = 0; i < count; ++i) {
    Src v = src.Get(static_cast<int>(i));
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, Src>) {
      if (v < static_cast<Src>(std::numeric_limits<T>::min()) ||
          v > static_cast<Src>(std::numeric_limits<T>::max())) {
        return InvalidArgument(path + "." + field + "[" + std::to_string(i) + "]: value " +
                               std::to_string(v) + " is out of range");
      }
    }
    T t = static_cast<T>(v);
    std::memcpy(p + i * sizeof(T), &t, sizeof(T));
  }
  *out = std::move(buf);
  return Status::Ok();
}

Status DecodeContents(const InferTensorContents& c, DataType type, int64_t count,
                      const std::string& path, TensorData* out) {
  switch (type) {
    case DataType::kBool: return CopyTyped<uint8_t>(c.bool_contents(), count, path, "bool_contents", out);
    case DataType::kInt8: return CopyTyped<int8_t>(c.int_contents(), count, path, "int_contents", out);
    case DataType::kInt16: return CopyTyped<int16_t>(c.int_contents(), count, path, "int_contents", out);
    case DataType::kInt32: return CopyTyped<int32_t>(c.int_contents(), count, path, "int_contents", out);
    case DataType::kInt64: return CopyTyped<int64_t>(c.int64_contents(), count, path, "int64_contents", out);
    case DataType::kUint8: return CopyTyped<uint8_t>(c.uint_contents(), count, path, "uint_contents", out);
    case DataType::kUint16: return CopyTyped<uint16_t>(c.uint_contents(), count, path, "uint_contents", out);
    case DataType::kUint32: return CopyTyped<uint32_t>(c.uint_contents(), count, path, "uint_contents", out);
    case DataType::kUint64: return CopyTyped<uint64_t>(c.uint64_contents(), count, path, "uint64_contents", out);
    case DataType::kFp32: return CopyTyped<float>(c.fp32_contents(), count, path, "fp32_contents", out);
    case DataType::kFp64: return CopyTyped<double>(c.fp64_contents(), count, path, "fp64_contents", out);
    case DataType::kFp16:
    case DataType::kBf16:
      return InvalidArgument(path + ": " + std::string(DataTypeName(type)) +
                             " has no typed contents; send it in raw_input_contents");
    case DataType::kBytes: {
      if (c.bytes_contents_size() != count) {
        return InvalidArgument(path + ": shape needs " + std::to_string(count) +
                               " elements in bytes_contents, got " +
                               std::to_string(c.bytes_contents_size()));
      }
      BytesTensorBuilder b;
      for (const auto& e : c.bytes_contents()) b.Append(e);
      *out = b.Finish();
      return Status::Ok();
    }
  }
  return Internal("unknown datatype");
}

bool HasContents(const InferTensorContents& c) {
  return c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() ||
         c.uint_contents_size() || c.uint64_contents_size() || c.fp32_contents_size() ||
         c.fp64_contents_size() || c.bytes_contents_size();
}

template <typename T, typename Dst>
void AppendTyped(const TensorData& data, RepeatedField<Dst>* dst) {
  size_t n = data.size() / sizeof(T);
  dst->Reserve(static_cast<int>(n));
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, data.data() + i * sizeof(T), sizeof(T));
    dst->Add(static_cast<Dst>(v));
  }
}

void EncodeContents(const Tensor& t, InferTensorContents* c) {
  switch (t.datatype) {
    case DataType::kBool: AppendTyped<uint8_t>(t.data, c->mutable_bool_contents()); break;
    case DataType::kInt8: AppendTyped<int8_t>(t.data, c->mutable_int_contents()); break;
    case DataType::kInt16: AppendTyped<int16_t>(t.data, c->mutable_int_contents()); break;
    case DataType::kInt32: AppendTyped<int32_t>(t.data, c->mutable_int_contents()); break;
    case DataType::kInt64: AppendTyped<int64_t>(t.data, c->mutable_int64_contents()); break;
    case DataType::kUint8: AppendTyped<uint8_t>(t.data, c->mutable_uint_contents()); break;
    case DataType::kUint16: AppendTyped<uint16_t>(t.data, c->mutable_uint_contents()); break;
    case DataType::kUint32: AppendTyped<uint32_t>(t.data, c->mutable_uint_contents()); break;
    case DataType::kUint64: AppendTyped<uint64_t>(t.data, c->mutable_uint64_contents()); break;
    case DataType::kFp32: AppendTyped<float>(t.data, c->mutable_fp32_contents()); break;
    case DataType::kFp64: AppendTyped<double>(t.data, c->mutable_fp64_contents()); break;
    case DataType::kBytes:
      ForEachBytesElement(t.data, [&](std::string_view e) { c->add_bytes_contents(e.data(), e.size()); });
      break;
    case DataType::kFp16:
    case DataType::kBf16: break;  // callers send these raw
  }
}

}  // namespace

void ToGrpcParameters(const Parameters& in, Map<std::string, InferParameter>* out) {
  for (const auto& [k, v] : in) {
    InferParameter& p = (*out)[k];
    std::visit(
        [&](const auto& x) {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, bool>) p.set_bool_param(x);
          else if constexpr (std::is_same_v<X, int64_t>) p.set_int64_param(x);
          else if constexpr (std::is_same_v<X, uint64_t>) p.set_uint64_param(x);
          else if constexpr (std::is_same_v<X, double>) p.set_double_param(x);
          else p.set_string_param(x);
        },
        v);
  }
}

Status DecodeGrpcRequest(const inference::ModelInferRequest& in, InferRequest* out) {
  out->id = in.id();
  QUIVER_RETURN_IF_ERROR(FromGrpcParameters(in.parameters(), "parameters", &out->parameters));
  bool raw = in.raw_input_contents_size() > 0;
  if (raw && in.raw_input_contents_size() != in.inputs_size()) {
    return InvalidArgument("raw_input_contents has " +
                           std::to_string(in.raw_input_contents_size()) + " entries but there are " +
                           std::to_string(in.inputs_size()) + " inputs; send one per input");
  }
  for (int i = 0; i < in.inputs_size(); ++i) {
    const auto& src = in.inputs(i);
    std::string path = "inputs[" + std::to_string(i) + "]";
    Tensor t;
    t.name = src.name();
    auto dt = ParseDataType(src.datatype());
    if (!dt) {
      return InvalidArgument(path + ".datatype: unknown datatype '" + src.datatype() + "'");
    }
    t.datatype = *dt;
    for (int64_t d : src.shape()) {
      if (d < 0) {
        return InvalidArgument(path + ".shape: dimensions must be >= 0, got " + std::to_string(d));
      }
      t.shape.push_back(d);
    }
    int64_t count = ElementCount(t.shape);
    if (count < 0) return InvalidArgument(path + ".shape: too large");
    QUIVER_RETURN_IF_ERROR(
        FromGrpcParameters(src.parameters(), path + ".parameters", &t.parameters));
    if (raw) {
      if (src.has_contents() && HasContents(src.contents())) {
        return InvalidArgument(path + ": contents are set although raw_input_contents is used; "
                                      "send all inputs one way");
      }
      const std::string& bytes = in.raw_input_contents(i);
      t.data = TensorData::Borrow(bytes.data(), bytes.size(), nullptr);
      QUIVER_RETURN_IF_ERROR(ValidateTensorData(t).WithPrefix(path));
    } else {
      QUIVER_RETURN_IF_ERROR(DecodeContents(src.contents(), t.datatype, count, path, &t.data));
    }
    out->inputs.push_back(std::move(t));
  }
  for (int i = 0; i < in.outputs_size(); ++i) {
    RequestedOutput ro;
    ro.name = in.outputs(i).name();
    QUIVER_RETURN_IF_ERROR(FromGrpcParameters(in.outputs(i).parameters(),
                                              "outputs[" + std::to_string(i) + "].parameters",
                                              &ro.parameters));
    out->outputs.push_back(std::move(ro));
  }
  return Status::Ok();
}

Status EncodeGrpcResponse(const InferResponse& in, bool raw,
                          inference::ModelInferResponse* out) {
  out->set_model_name(in.model_name);
  out->set_model_version(in.model_version);
  out->set_id(in.id);
  ToGrpcParameters(in.parameters, out->mutable_parameters());
  for (const auto& t : in.outputs) {
    if (t.datatype == DataType::kFp16 || t.datatype == DataType::kBf16) raw = true;
  }
  for (const auto& t : in.outputs) {
    auto* o = out->add_outputs();
    o->set_name(t.name);
    o->set_datatype(std::string(DataTypeName(t.datatype)));
    for (int64_t d : t.shape) o->add_shape(d);
    ToGrpcParameters(t.parameters, o->mutable_parameters());
    if (raw) {
      out->add_raw_output_contents(reinterpret_cast<const char*>(t.data.data()), t.data.size());
    } else {
      EncodeContents(t, o->mutable_contents());
    }
  }
  return Status::Ok();
}

}  // namespace quiver
