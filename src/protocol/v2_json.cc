#include "protocol/v2_json.h"

#include <algorithm>
#include <cstring>

#include "protocol/json_writer.h"
#include "protocol/tensor_json.h"

namespace quiver {
namespace {

using json::element;
using json::element_type;
using json::TypeOf;

constexpr std::string_view kBinaryDataSize = "binary_data_size";

// Reads the input's header fields and either its JSON data or its binary size.
// `binary_size` is set (>= 0) when the data is in the binary section.
Status DecodeInput(const element& e, const std::string& path, size_t body_size, Tensor* t,
                   int64_t* binary_size) {
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
      continue;
    }
    std::string got = TypeOf(d);
    if (d.type() == element_type::INT64) got = std::to_string(int64_t(d));
    if (d.type() == element_type::DOUBLE) got = std::to_string(double(d));
    return InvalidArgument(path + ".shape[" + std::to_string(t->shape.size()) +
                           "]: expected a non-negative integer, got " + got);
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
  *binary_size = -1;
  if (obj["parameters"].get(params) == simdjson::SUCCESS &&
      params.type() != element_type::NULL_VALUE) {
    Parameters p;
    QUIVER_RETURN_IF_ERROR(json::DecodeParameters(params, path + ".parameters", &p));
    // binary_data_size is transport, not a parameter of the tensor: it is not passed on.
    for (const auto& [k, v] : p) {
      if (k != kBinaryDataSize) {
        t->parameters.Set(k, v);
        continue;
      }
      if (!std::holds_alternative<int64_t>(v) || std::get<int64_t>(v) < 0) {
        return InvalidArgument(path + ".parameters.binary_data_size: expected a non-negative "
                                      "integer");
      }
      *binary_size = std::get<int64_t>(v);
    }
  }
  int64_t count = ElementCount(t->shape);
  if (count < 0) {
    return InvalidArgument(path + ".shape: " + ShapeToString(t->shape) + " is too large");
  }
  bool has_data = obj["data"].get(data) == simdjson::SUCCESS;
  if (*binary_size >= 0) {
    if (has_data) {
      return InvalidArgument(path + ": has both data and parameters.binary_data_size; send one");
    }
    return Status::Ok();
  }
  if (!has_data) {
    return InvalidArgument(path + ".data: required (or parameters.binary_data_size for data in "
                                  "the binary section)");
  }
  Status s = json::DecodeValues(data, *dt, path, count, body_size, &t->data);
  if (!s.ok() && s.message().find(": shape needs ") != std::string::npos) {
    // Name the shape in count mismatches: "inputs[0]: shape [2, 2] needs 4 elements, got 3".
    std::string m = s.message();
    m.replace(m.find(": shape needs ") + 7, 0, " " + ShapeToString(t->shape));
    return InvalidArgument(m);
  }
  QUIVER_RETURN_IF_ERROR(s);
  // Flat data may take any shape; nested data must have exactly the declared one.
  if (data.type() == element_type::ARRAY && t->shape.size() > 1) {
    bool nested = false;
    for (element c : simdjson::dom::array(data)) {
      nested = c.type() == element_type::ARRAY;
      break;
    }
    if (nested) {
      Shape got;
      Status shape_ok = json::ShapeOf(data, path + ".data", &got);
      if (!shape_ok.ok() || got != t->shape) {
        return InvalidArgument(path + ".data: nested data does not have the declared shape " +
                               ShapeToString(t->shape) + "; send it flat or nested exactly");
      }
    }
  }
  return Status::Ok();
}

bool WantsBinary(const InferRequest& request, const std::string& output) {
  for (const auto& o : request.outputs) {
    if (o.name == output) {
      if (auto b = o.parameters.GetBool("binary_data")) return *b;
      break;
    }
  }
  return request.parameters.GetBool("binary_data_output").value_or(false);
}

}  // namespace

Status DecodeV2Request(std::shared_ptr<const std::string> body, std::optional<size_t> json_size,
                       InferRequest* request) {
  size_t header_size = json_size.value_or(body->size());
  if (header_size > body->size()) {
    return InvalidArgument("Inference-Header-Content-Length is " + std::to_string(header_size) +
                           " but the body has only " + std::to_string(body->size()) + " bytes");
  }
  thread_local simdjson::dom::parser parser;
  element root;
  auto err = parser.parse(body->data(), header_size, /*realloc_if_needed=*/true).get(root);
  if (err != simdjson::SUCCESS) {
    // A body with control bytes is likely binary data sent without its header length.
    bool looks_binary = std::any_of(body->begin(), body->begin() + header_size, [](char c) {
      return static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r';
    });
    std::string hint = json_size || !looks_binary
                           ? ""
                           : " (binary bodies need an Inference-Header-Content-Length header)";
    return InvalidArgument(json::ParseErrorMessage(err) +
                           hint);
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
    QUIVER_RETURN_IF_ERROR(json::DecodeParameters(params, "parameters", &request->parameters));
  }
  if (obj["inputs"].get(inputs) != simdjson::SUCCESS) {
    return InvalidArgument("inputs: required");
  }
  if (inputs.type() != element_type::ARRAY) {
    return InvalidArgument("inputs: expected an array, got " + TypeOf(inputs));
  }
  size_t offset = header_size;
  size_t i = 0;
  for (element in : simdjson::dom::array(inputs)) {
    std::string path = "inputs[" + std::to_string(i++) + "]";
    Tensor t;
    int64_t binary_size = -1;
    QUIVER_RETURN_IF_ERROR(DecodeInput(in, path, header_size, &t, &binary_size));
    if (binary_size >= 0) {
      size_t left = body->size() - offset;
      if (static_cast<uint64_t>(binary_size) > left) {
        return InvalidArgument(path + ": binary_data_size is " + std::to_string(binary_size) +
                               " but only " + std::to_string(left) +
                               " bytes of the binary section remain");
      }
      t.data = TensorData::Borrow(body->data() + offset, static_cast<size_t>(binary_size), body);
      offset += static_cast<size_t>(binary_size);
      QUIVER_RETURN_IF_ERROR(ValidateTensorData(t).WithPrefix(path));
    }
    request->inputs.push_back(std::move(t));
  }
  if (auto* v = request->parameters.Find("binary_data_output");
      v != nullptr && !std::holds_alternative<bool>(*v)) {
    return InvalidArgument("parameters.binary_data_output: expected true or false");
  }
  if (offset != body->size()) {
    return InvalidArgument("the binary section has " + std::to_string(body->size() - offset) +
                           " bytes beyond what the inputs' binary_data_size declare");
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
        QUIVER_RETURN_IF_ERROR(
            json::DecodeParameters(oparams, path + ".parameters", &ro.parameters));
      }
      if (auto* b = ro.parameters.Find("binary_data");
          b != nullptr && !std::holds_alternative<bool>(*b)) {
        return InvalidArgument(path + ".parameters.binary_data: expected true or false");
      }
      request->outputs.push_back(std::move(ro));
    }
  }
  return Status::Ok();
}

Status DecodeV2Request(std::string_view json, InferRequest* request) {
  return DecodeV2Request(std::make_shared<const std::string>(json), std::nullopt, request);
}

Status EncodeV2Response(const InferRequest& request, const InferResponse& response,
                        std::string* body, size_t* json_size, bool* binary_out) {
  JsonWriter w(body);
  w.Raw("{\"model_name\":");
  w.String(response.model_name);
  w.Raw(",\"model_version\":");
  w.String(response.model_version);
  w.Raw(",\"id\":");
  w.String(response.id);
  if (!response.parameters.empty()) {
    w.Raw(",\"parameters\":");
    json::WriteParameters(response.parameters, w);
  }
  w.Raw(",\"outputs\":[");
  std::vector<const Tensor*> binary;
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
    bool as_binary = WantsBinary(request, t.name);
    if (as_binary) {
      Parameters p;
      for (const auto& [k, v] : t.parameters) p.Set(k, v);
      p.Set(std::string(kBinaryDataSize), static_cast<int64_t>(t.data.size()));
      w.Raw(",\"parameters\":");
      json::WriteParameters(p, w);
      w.Char('}');
      binary.push_back(&t);
      continue;
    }
    if (!t.parameters.empty()) {
      w.Raw(",\"parameters\":");
      json::WriteParameters(t.parameters, w);
    }
    w.Raw(",\"data\":");
    QUIVER_RETURN_IF_ERROR(json::WriteValues(t, w, /*nested=*/false));
    w.Char('}');
  }
  w.Raw("]}");
  *json_size = body->size();
  *binary_out = !binary.empty();
  for (const Tensor* t : binary) {
    body->append(reinterpret_cast<const char*>(t->data.data()), t->data.size());
  }
  return Status::Ok();
}

}  // namespace quiver
