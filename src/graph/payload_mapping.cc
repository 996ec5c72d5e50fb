#include "graph/payload_mapping.h"

#include <set>

namespace quiver::graph {

std::string MapPredictionsToInstances(const std::string& body) {
  Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("predictions")) return body;
  Json out = Json::object();
  for (auto& [key, value] : doc.items()) {
    out[key == "predictions" ? std::string("instances") : key] = std::move(value);
  }
  return out.dump();
}

StatusOr<std::string> MapOutputsToInputs(const std::string& body,
                                         const std::map<std::string, std::string>& rename) {
  Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return InvalidArgument("mapOutputsToInputs: the previous response is not JSON");
  }
  auto outputs = doc.is_object() ? doc.find("outputs") : doc.end();
  if (!doc.is_object() || outputs == doc.end() || !outputs->is_array()) {
    return InvalidArgument(
        "mapOutputsToInputs: expected an Open Inference Protocol v2 response with an \"outputs\" "
        "array, got " + doc.dump().substr(0, 200));
  }
  Json inputs = Json::array();
  std::set<std::string> seen;
  std::string available;
  for (size_t i = 0; i < outputs->size(); ++i) {
    const Json& output = (*outputs)[i];
    auto name_it = output.is_object() ? output.find("name") : output.end();
    if (name_it == output.end() || !name_it->is_string()) {
      return InvalidArgument("mapOutputsToInputs: outputs[" + std::to_string(i) +
                             "] has no \"name\" string");
    }
    const std::string& name = name_it->get_ref<const std::string&>();
    available += (available.empty() ? "" : ", ") + name;
    std::string input_name = name;
    if (!rename.empty()) {
      auto r = rename.find(name);
      if (r == rename.end()) continue;
      input_name = r->second;
    }
    if (!output.contains("data")) {
      return InvalidArgument("mapOutputsToInputs: output \"" + name +
                             "\" has no \"data\" (binary-extension outputs cannot be chained; "
                             "ask for JSON outputs)");
    }
    seen.insert(name);
    Json input = Json::object();
    input["name"] = input_name;
    for (const char* field : {"datatype", "shape"}) {
      if (!output.contains(field)) {
        return InvalidArgument("mapOutputsToInputs: output \"" + name + "\" has no \"" + field +
                               "\"");
      }
      input[field] = output[field];
    }
    if (auto params = output.find("parameters"); params != output.end() && params->is_object()) {
      Json kept = *params;
      kept.erase("binary_data_size");
      if (!kept.empty()) input["parameters"] = std::move(kept);
    }
    input["data"] = output["data"];
    inputs.push_back(std::move(input));
  }
  for (const auto& [output, input] : rename) {
    if (!seen.count(output)) {
      return InvalidArgument("mapOutputsToInputs: the response has no output \"" + output +
                             "\" (it has: " + (available.empty() ? "none" : available) + ")");
    }
  }
  Json request = Json::object();
  if (auto id = doc.find("id"); id != doc.end() && id->is_string()) request["id"] = *id;
  request["inputs"] = std::move(inputs);
  return request.dump();
}

}  // namespace quiver::graph
