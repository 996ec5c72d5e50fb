#include "runtime/validate.h"

namespace quiver {
namespace {

bool ShapeMatches(const Shape& declared, const Shape& got) {
  if (declared.size() != got.size()) return false;
  for (size_t i = 0; i < declared.size(); ++i) {
    if (declared[i] != -1 && declared[i] != got[i]) return false;
  }
  return true;
}

std::string Names(const std::vector<TensorSpec>& specs) {
  std::string s;
  for (const auto& t : specs) {
    if (!s.empty()) s += ", ";
    s += t.name;
  }
  return s;
}

}  // namespace

Status CheckRequest(const ModelMetadata& metadata, const InferRequest& request) {
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (request.inputs[i].name == request.inputs[j].name) {
        return InvalidArgument("inputs[" + std::to_string(i) + "]: duplicate input name '" +
                               request.inputs[i].name + "'");
      }
    }
  }
  if (metadata.check_inputs) {
    for (size_t i = 0; i < request.inputs.size(); ++i) {
      const Tensor& in = request.inputs[i];
      const TensorSpec* spec = nullptr;
      for (const auto& s : metadata.inputs) {
        if (s.name == in.name) spec = &s;
      }
      if (spec == nullptr) {
        return InvalidArgument("unexpected input '" + in.name + "' for model '" +
                               request.model_name + "'; it takes: " + Names(metadata.inputs));
      }
      if (spec->datatype != in.datatype) {
        return InvalidArgument("input '" + in.name + "': expected datatype " +
                               std::string(DataTypeName(spec->datatype)) + ", got " +
                               std::string(DataTypeName(in.datatype)));
      }
      if (!ShapeMatches(spec->shape, in.shape)) {
        return InvalidArgument("input '" + in.name + "': expected shape " +
                               ShapeToString(spec->shape) + ", got " + ShapeToString(in.shape));
      }
    }
    for (const auto& spec : metadata.inputs) {
      if (request.FindInput(spec.name) == nullptr) {
        return InvalidArgument("missing input '" + spec.name + "' for model '" +
                               request.model_name + "'");
      }
    }
  }
  for (size_t i = 0; i < request.outputs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (request.outputs[i].name == request.outputs[j].name) {
        return InvalidArgument("outputs[" + std::to_string(i) + "]: output '" +
                               request.outputs[i].name + "' is requested twice");
      }
    }
  }
  if (!metadata.outputs.empty()) {
    for (const auto& want : request.outputs) {
      bool known = false;
      for (const auto& s : metadata.outputs) known = known || s.name == want.name;
      if (!known) {
        return InvalidArgument("unexpected output '" + want.name + "' requested from model '" +
                               request.model_name + "'; it has: " + Names(metadata.outputs));
      }
    }
  }
  return Status::Ok();
}

Status SelectOutputs(const InferRequest& request, InferResponse* response) {
  if (request.outputs.empty()) return Status::Ok();
  std::vector<Tensor> kept;
  kept.reserve(request.outputs.size());
  for (const auto& want : request.outputs) {
    bool found = false;
    for (auto& t : response->outputs) {
      if (t.name == want.name) {
        kept.push_back(std::move(t));
        found = true;
        break;
      }
    }
    if (!found) {
      return InvalidArgument("unexpected output '" + want.name + "' requested from model '" +
                             request.model_name + "'");
    }
  }
  response->outputs = std::move(kept);
  return Status::Ok();
}

}  // namespace quiver
