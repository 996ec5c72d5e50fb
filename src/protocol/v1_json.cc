#include "protocol/v1_json.h"

#include <cstring>

#include "protocol/json_writer.h"
#include "protocol/tensor_json.h"

namespace quiver {
namespace {

using json::element;
using json::element_type;
using json::TypeOf;

const TensorSpec* FindSpec(const std::vector<TensorSpec>& specs, std::string_view name) {
  for (const auto& s : specs) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// Decodes one whole tensor from a JSON value.
Status DecodeWhole(const element& value, const std::string& name, const TensorSpec* spec,
                   const std::string& path, size_t body_size, Tensor* t) {
  t->name = name;
  QUIVER_RETURN_IF_ERROR(json::ShapeOf(value, path, &t->shape));
  if (spec != nullptr) {
    t->datatype = spec->datatype;
  } else {
    QUIVER_RETURN_IF_ERROR(json::GuessDataType(value, path, &t->datatype));
  }
  return json::DecodeValues(value, t->datatype, path, t->element_count(), body_size, &t->data);
}

// Stacks rows[i][name] for every row into one tensor of shape [n, ...].
Status StackNamedRows(const simdjson::dom::array& rows, const std::string& name,
                      const TensorSpec* spec, size_t body_size, Tensor* t) {
  t->name = name;
  std::vector<TensorData> parts;
  Shape row_shape;
  bool first = true;
  bool guessed = false;
  size_t i = 0;
  for (element row : rows) {
    std::string path = "instances[" + std::to_string(i) + "]." + name;
    element v;
    if (row.type() != element_type::OBJECT || simdjson::dom::object(row)[name].get(v) != simdjson::SUCCESS) {
      return InvalidArgument(path + ": required (every instance must name the same inputs)");
    }
    Shape s;
    QUIVER_RETURN_IF_ERROR(json::ShapeOf(v, path, &s));
    if (first) {
      row_shape = s;
      if (spec != nullptr) {
        t->datatype = spec->datatype;
      } else {
        QUIVER_RETURN_IF_ERROR(json::GuessDataType(v, path, &t->datatype));
        guessed = true;
      }
      first = false;
    } else if (s != row_shape) {
      return InvalidArgument(path + ": shape " + ShapeToString(s) + " differs from instance 0's " +
                             ShapeToString(row_shape));
    } else if (guessed) {
      DataType dt;
      QUIVER_RETURN_IF_ERROR(json::GuessDataType(v, path, &dt));
      if (dt == DataType::kFp64 && t->datatype == DataType::kInt64) t->datatype = dt;
    }
    parts.emplace_back();
    ++i;
  }
  // Decode after the datatype is settled (integers and fractions may mix across rows).
  i = 0;
  size_t total = 0;
  for (element row : rows) {
    element v = simdjson::dom::object(row)[name];
    std::string path = "instances[" + std::to_string(i) + "]." + name;
    QUIVER_RETURN_IF_ERROR(json::DecodeValues(v, t->datatype, path, ElementCount(row_shape),
                                              body_size, &parts[i]));
    total += parts[i].size();
    ++i;
  }
  TensorData all = TensorData::Allocate(total);
  size_t at = 0;
  for (const auto& p : parts) {
    std::memcpy(all.mutable_data() + at, p.data(), p.size());
    at += p.size();
  }
  t->shape = {static_cast<int64_t>(parts.size())};
  t->shape.insert(t->shape.end(), row_shape.begin(), row_shape.end());
  t->data = std::move(all);
  return Status::Ok();
}

}  // namespace

Status DecodeV1Request(std::string_view body, const std::vector<TensorSpec>& inputs,
                       InferRequest* request) {
  thread_local simdjson::dom::parser parser;
  element root;
  auto err = parser.parse(body.data(), body.size(), /*realloc_if_needed=*/true).get(root);
  if (err != simdjson::SUCCESS) {
    return InvalidArgument(json::ParseErrorMessage(err));
  }
  if (root.type() != element_type::OBJECT) {
    return InvalidArgument("request body: expected a JSON object, got " + TypeOf(root));
  }
  simdjson::dom::object obj(root);
  element instances, columns;
  bool has_instances = obj["instances"].get(instances) == simdjson::SUCCESS;
  bool has_inputs = obj["inputs"].get(columns) == simdjson::SUCCESS;
  if (!has_instances && !has_inputs) {
    return InvalidArgument("Expected \"instances\" or \"inputs\" in the request body");
  }
  std::string single_name = inputs.size() == 1 ? inputs[0].name : "input-0";
  const TensorSpec* single_spec = inputs.size() == 1 ? &inputs[0] : nullptr;
  // KServe treats a list under "inputs" exactly like "instances".
  if (!has_instances && columns.type() == element_type::ARRAY) {
    instances = columns;
    has_instances = true;
  }
  if (has_instances) {
    if (instances.type() != element_type::ARRAY) {
      return InvalidArgument("Expected \"instances\" to be a list, got " + TypeOf(instances));
    }
    simdjson::dom::array rows(instances);
    if (rows.size() == 0) return InvalidArgument("instances: must not be empty");
    element first = *rows.begin();
    if (first.type() == element_type::OBJECT) {
      for (auto field : simdjson::dom::object(first)) {
        Tensor t;
        std::string name(field.key);
        QUIVER_RETURN_IF_ERROR(
            StackNamedRows(rows, name, FindSpec(inputs, name), body.size(), &t));
        request->inputs.push_back(std::move(t));
      }
      return Status::Ok();
    }
    if (inputs.size() > 1) {
      return InvalidArgument("the model takes " + std::to_string(inputs.size()) +
                             " inputs; send each instance as an object keyed by input name");
    }
    Tensor t;
    QUIVER_RETURN_IF_ERROR(
        DecodeWhole(instances, single_name, single_spec, "instances", body.size(), &t));
    request->inputs.push_back(std::move(t));
    return Status::Ok();
  }
  if (columns.type() == element_type::OBJECT) {
    for (auto field : simdjson::dom::object(columns)) {
      std::string name(field.key);
      Tensor t;
      QUIVER_RETURN_IF_ERROR(DecodeWhole(field.value, name, FindSpec(inputs, name),
                                         "inputs." + name, body.size(), &t));
      request->inputs.push_back(std::move(t));
    }
    return Status::Ok();
  }
  if (inputs.size() > 1) {
    return InvalidArgument("the model takes " + std::to_string(inputs.size()) +
                           " inputs; send \"inputs\" as an object keyed by input name");
  }
  Tensor t;
  QUIVER_RETURN_IF_ERROR(DecodeWhole(columns, single_name, single_spec, "inputs", body.size(), &t));
  request->inputs.push_back(std::move(t));
  return Status::Ok();
}

Status EncodeV1Response(const InferResponse& response, std::string* out) {
  JsonWriter w(out);
  w.Raw("{\"predictions\":");
  if (response.outputs.size() == 1) {
    QUIVER_RETURN_IF_ERROR(json::WriteValues(response.outputs[0], w, /*nested=*/true));
    w.Char('}');
    return Status::Ok();
  }
  // Several outputs: one object per row when they share the batch dimension.
  int64_t rows = -1;
  bool by_row = !response.outputs.empty();
  for (const auto& t : response.outputs) {
    if (t.shape.empty() || (rows >= 0 && t.shape[0] != rows)) by_row = false;
    if (!t.shape.empty()) rows = t.shape[0];
  }
  if (by_row) {
    w.Char('[');
    for (int64_t r = 0; r < rows; ++r) {
      if (r) w.Char(',');
      w.Char('{');
      for (size_t i = 0; i < response.outputs.size(); ++i) {
        if (i) w.Char(',');
        w.Key(response.outputs[i].name);
        QUIVER_RETURN_IF_ERROR(json::WriteRow(response.outputs[i], r, w));
      }
      w.Char('}');
    }
    w.Raw("]}");
    return Status::Ok();
  }
  w.Char('{');
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    if (i) w.Char(',');
    w.Key(response.outputs[i].name);
    QUIVER_RETURN_IF_ERROR(json::WriteValues(response.outputs[i], w, /*nested=*/true));
  }
  w.Raw("}}");
  return Status::Ok();
}

}  // namespace quiver
