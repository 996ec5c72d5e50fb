#include "loadgen/request_encoding.h"

#include <cstring>

#include "protocol/json_writer.h"

namespace quiver::loadgen {
namespace {

std::string EscapePathSegment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == '~';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

void WriteShape(const Shape& shape, JsonWriter& w) {
  w.Char('[');
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) w.Char(',');
    w.Int(shape[i]);
  }
  w.Char(']');
}

void WriteTensorHead(const Tensor& t, JsonWriter& w) {
  w.Key("name");
  w.String(t.name);
  w.Char(',');
  w.Key("shape");
  WriteShape(t.shape, w);
  w.Char(',');
  w.Key("datatype");
  w.String(DataTypeName(t.datatype));
}

Status WriteValues(const Tensor& t, JsonWriter& w) {
  w.Char('[');
  if (t.datatype == DataType::kBytes) {
    bool first = true;
    ForEachBytesElement(t.data, [&](std::string_view s) {
      if (!first) w.Char(',');
      first = false;
      w.String(s);
    });
    w.Char(']');
    return Status::Ok();
  }
  const size_t size = DataTypeSize(t.datatype);
  const size_t n = size == 0 ? 0 : t.data.size() / size;
  const std::byte* p = t.data.data();
  for (size_t i = 0; i < n; ++i, p += size) {
    if (i > 0) w.Char(',');
    switch (t.datatype) {
      case DataType::kBool:
        w.Bool(Load<uint8_t>(p) != 0);
        break;
      case DataType::kUint8:
        w.Uint(Load<uint8_t>(p));
        break;
      case DataType::kUint16:
        w.Uint(Load<uint16_t>(p));
        break;
      case DataType::kUint32:
        w.Uint(Load<uint32_t>(p));
        break;
      case DataType::kUint64:
        w.Uint(Load<uint64_t>(p));
        break;
      case DataType::kInt8:
        w.Int(Load<int8_t>(p));
        break;
      case DataType::kInt16:
        w.Int(Load<int16_t>(p));
        break;
      case DataType::kInt32:
        w.Int(Load<int32_t>(p));
        break;
      case DataType::kInt64:
        w.Int(Load<int64_t>(p));
        break;
      case DataType::kFp32:
        w.Float(Load<float>(p));
        break;
      case DataType::kFp64:
        w.Double(Load<double>(p));
        break;
      default:
        return InvalidArgument("input '" + t.name + "' is " +
                               std::string(DataTypeName(t.datatype)) +
                               ", which servers do not take as JSON: use --binary or -i grpc");
    }
  }
  w.Char(']');
  return Status::Ok();
}

}  // namespace

std::string ModelPath(std::string_view model, std::string_view version) {
  std::string path = "/v2/models/" + EscapePathSegment(model);
  if (!version.empty()) path += "/versions/" + EscapePathSegment(version);
  return path;
}

StatusOr<std::string> EncodeJsonInferBody(const std::vector<Tensor>& inputs) {
  std::string body;
  JsonWriter w(&body);
  w.Raw("{\"inputs\":[");
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i > 0) w.Char(',');
    w.Char('{');
    WriteTensorHead(inputs[i], w);
    w.Char(',');
    w.Key("data");
    QUIVER_RETURN_IF_ERROR(WriteValues(inputs[i], w));
    w.Char('}');
  }
  w.Raw("]}");
  return body;
}

std::string EncodeBinaryInferBody(const std::vector<Tensor>& inputs, size_t* header_size) {
  std::string body;
  JsonWriter w(&body);
  w.Raw("{\"inputs\":[");
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i > 0) w.Char(',');
    w.Char('{');
    WriteTensorHead(inputs[i], w);
    w.Raw(",\"parameters\":{\"binary_data_size\":");
    w.Uint(inputs[i].data.size());
    w.Raw("}}");
  }
  w.Raw("],\"parameters\":{\"binary_data_output\":true}}");
  *header_size = body.size();
  for (const Tensor& t : inputs) {
    body.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  return body;
}

std::string HttpPostRequest(std::string_view host, std::string_view path, std::string_view body,
                            std::optional<size_t> header_size) {
  std::string r;
  r.reserve(body.size() + 256);
  r.append("POST ").append(path).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
  if (header_size) {
    r.append("Content-Type: application/octet-stream\r\nInference-Header-Content-Length: ")
        .append(std::to_string(*header_size))
        .append("\r\n");
  } else {
    r.append("Content-Type: application/json\r\n");
  }
  r.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
  r.append(body);
  return r;
}

inference::ModelInferRequest EncodeGrpcInferRequest(std::string_view model,
                                                    std::string_view version,
                                                    const std::vector<Tensor>& inputs) {
  inference::ModelInferRequest req;
  req.set_model_name(std::string(model));
  req.set_model_version(std::string(version));
  for (const Tensor& t : inputs) {
    auto* in = req.add_inputs();
    in->set_name(t.name);
    in->set_datatype(std::string(DataTypeName(t.datatype)));
    for (int64_t d : t.shape) in->add_shape(d);
    req.add_raw_input_contents(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  }
  return req;
}

}  // namespace quiver::loadgen
