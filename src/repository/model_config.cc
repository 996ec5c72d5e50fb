#include "repository/model_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "runtime/runtime_registry.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;

struct Extension {
  const char* ext;
  const char* format;
};
constexpr Extension kExtensions[] = {
    {".json", "xgboost"}, {".ubj", "xgboost"},    {".bst", "xgboost"},   {".pt", "pytorch"},
    {".onnx", "onnx"},    {".joblib", "sklearn"}, {".pkl", "sklearn"},   {".pickle", "sklearn"},
};

std::string FormatOfFile(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  for (const auto& e : kExtensions) {
    if (ext == e.ext) return e.format;
  }
  return "";
}

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "null";
    case YAML::NodeType::Scalar: return "'" + n.Scalar() + "'";
    default: return "nothing";
  }
}

StatusOr<std::string> ScalarString(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) return InvalidArgument(path + ": expected a string, got " + Describe(n));
  return n.Scalar();
}

StatusOr<int64_t> ScalarInt(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) return InvalidArgument(path + ": expected an integer, got " + Describe(n));
  try {
    return n.as<int64_t>();
  } catch (const YAML::Exception&) {
    return InvalidArgument(path + ": expected an integer, got " + Describe(n));
  }
}

StatusOr<bool> ScalarBool(const YAML::Node& n, const std::string& path) {
  if (!n.IsScalar()) return InvalidArgument(path + ": expected true or false, got " + Describe(n));
  try {
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    return InvalidArgument(path + ": expected true or false, got " + Describe(n));
  }
}

Status ParseTensorSpecs(const YAML::Node& n, const std::string& path,
                        std::vector<TensorSpec>* out) {
  if (!n.IsSequence()) return InvalidArgument(path + ": expected a list, got " + Describe(n));
  for (size_t i = 0; i < n.size(); ++i) {
    std::string p = path + "[" + std::to_string(i) + "]";
    const YAML::Node& t = n[i];
    if (!t.IsMap()) return InvalidArgument(p + ": expected a mapping, got " + Describe(t));
    TensorSpec spec;
    for (const auto& kv : t) {
      std::string key = kv.first.Scalar();
      std::string kp = p + "." + key;
      if (key == "name") {
        QUIVER_ASSIGN_OR_RETURN(spec.name, ScalarString(kv.second, kp));
      } else if (key == "datatype") {
        QUIVER_ASSIGN_OR_RETURN(std::string dt, ScalarString(kv.second, kp));
        auto parsed = ParseDataType(dt);
        if (!parsed) return InvalidArgument(kp + ": unknown datatype '" + dt + "'");
        spec.datatype = *parsed;
      } else if (key == "shape" || key == "dims") {
        if (!kv.second.IsSequence()) {
          return InvalidArgument(kp + ": expected a list of integers, got " +
                                 Describe(kv.second));
        }
        for (size_t d = 0; d < kv.second.size(); ++d) {
          QUIVER_ASSIGN_OR_RETURN(int64_t v,
                                  ScalarInt(kv.second[d], kp + "[" + std::to_string(d) + "]"));
          if (v < -1) {
            return InvalidArgument(kp + "[" + std::to_string(d) +
                                   "]: must be -1 (variable) or >= 0, got " + std::to_string(v));
          }
          spec.shape.push_back(v);
        }
      } else {
        return InvalidArgument(kp + ": unknown field (expected name, datatype, shape)");
      }
    }
    if (spec.name.empty()) return InvalidArgument(p + ".name: required");
    out->push_back(std::move(spec));
  }
  return Status::Ok();
}

}  // namespace

Status DetectModelFile(const fs::path& dir, ModelConfig* config) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFound("model directory " + dir.string() + " does not exist");
  }
  std::vector<fs::path> matches;
  std::set<std::string> formats;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string f = FormatOfFile(entry.path());
    if (f.empty()) continue;
    if (!config->format.empty() && f != config->format) continue;
    matches.push_back(entry.path());
    formats.insert(f);
  }
  std::sort(matches.begin(), matches.end());
  if (matches.empty()) {
    if (!config->format.empty()) {
      return InvalidArgument("no " + config->format + " model file in " + dir.string());
    }
    return InvalidArgument("no model file in " + dir.string() +
                           " (expected *.json|*.ubj|*.bst for xgboost, *.pt for pytorch, *.onnx "
                           "for onnx, *.joblib|*.pkl|*.pickle for sklearn, or a config.yaml "
                           "naming the format)");
  }
  if (formats.size() > 1) {
    std::string names;
    for (const auto& m : matches) names += " " + m.filename().string();
    return InvalidArgument("model files of several formats in " + dir.string() + ":" + names +
                           "; name the format in config.yaml");
  }
  if (matches.size() > 1) {
    std::string names;
    for (const auto& m : matches) names += " " + m.filename().string();
    return InvalidArgument("expected exactly one " + *formats.begin() + " model file in " +
                           dir.string() + ", found" + names +
                           "; name one with model_file in config.yaml");
  }
  config->format = *formats.begin();
  config->model_file = matches[0];
  return Status::Ok();
}

StatusOr<ModelConfig> ParseModelConfigYaml(const std::string& yaml, const fs::path& dir,
                                           const std::string& name) {
  ModelConfig config;
  config.name = name;
  config.path = dir;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("config.yaml: malformed YAML at line " +
                           std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (root.IsNull()) return config;
  if (!root.IsMap()) {
    return InvalidArgument("config.yaml: expected a mapping at the top, got " + Describe(root));
  }
  for (const auto& kv : root) {
    std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (key == "format") {
      QUIVER_ASSIGN_OR_RETURN(config.format, ScalarString(v, key));
    } else if (key == "name") {
      QUIVER_ASSIGN_OR_RETURN(std::string n, ScalarString(v, key));
      if (n != name) {
        return InvalidArgument("config.yaml: name: '" + n + "' differs from the model's name '" +
                               name + "' (the folder's name)");
      }
    } else if (key == "version") {
      QUIVER_ASSIGN_OR_RETURN(config.version, ScalarString(v, key));
    } else if (key == "model_file") {
      QUIVER_ASSIGN_OR_RETURN(std::string f, ScalarString(v, key));
      config.model_file = dir / f;
    } else if (key == "instance_count") {
      QUIVER_ASSIGN_OR_RETURN(int64_t n, ScalarInt(v, key));
      if (n < 1 || n > 256) {
        return InvalidArgument("config.yaml: instance_count: must be between 1 and 256, got " +
                               std::to_string(n));
      }
      config.instance_count = static_cast<int>(n);
    } else if (key == "inline_execution") {
      QUIVER_ASSIGN_OR_RETURN(bool b, ScalarBool(v, key));
      config.inline_execution = b;
    } else if (key == "inputs") {
      QUIVER_RETURN_IF_ERROR(
          ParseTensorSpecs(v, key, &config.inputs).WithPrefix("config.yaml"));
    } else if (key == "outputs") {
      QUIVER_RETURN_IF_ERROR(
          ParseTensorSpecs(v, key, &config.outputs).WithPrefix("config.yaml"));
    } else if (key == "parameters") {
      if (!v.IsMap()) {
        return InvalidArgument("config.yaml: parameters: expected a mapping, got " + Describe(v));
      }
      for (const auto& p : v) {
        std::string pk = p.first.Scalar();
        if (!p.second.IsScalar()) {
          return InvalidArgument("config.yaml: parameters." + pk + ": expected a scalar, got " +
                                 Describe(p.second));
        }
        config.parameters[pk] = p.second.Scalar();
      }
    } else {
      return InvalidArgument("config.yaml: unknown field '" + key +
                             "' (expected format, version, model_file, instance_count, "
                             "inline_execution, inputs, outputs, parameters)");
    }
  }
  if (!config.format.empty() && RuntimeRegistry::PluginForFormat(config.format).empty() &&
      config.format != "echo" && config.format != "add_sub" && config.format != "sleep") {
    return InvalidArgument("config.yaml: format: unknown format '" + config.format +
                           "'; known formats: " + RuntimeRegistry::KnownFormats());
  }
  return config;
}

StatusOr<ModelConfig> ReadModelConfig(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return NotFound("model directory " + dir.string() + " does not exist");
  }
  ModelConfig config;
  fs::path yaml_path = dir / "config.yaml";
  if (fs::exists(yaml_path, ec)) {
    std::ifstream in(yaml_path);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return InvalidArgument("cannot read " + yaml_path.string());
    QUIVER_ASSIGN_OR_RETURN(config, ParseModelConfigYaml(text.str(), dir, name));
  } else {
    config.name = name;
    config.path = dir;
  }
  bool builtin = config.format == "echo" || config.format == "add_sub" ||
                 config.format == "sleep";
  if (!builtin && config.model_file.empty()) {
    QUIVER_RETURN_IF_ERROR(DetectModelFile(dir, &config));
  } else if (!config.model_file.empty() && !fs::exists(config.model_file, ec)) {
    return InvalidArgument("config.yaml: model_file: " + config.model_file.string() +
                           " does not exist");
  }
  if (config.format.empty() && !config.model_file.empty()) {
    ModelConfig detected;
    detected.format = FormatOfFile(config.model_file);
    if (detected.format.empty()) {
      return InvalidArgument("config.yaml: cannot tell the format of model_file " +
                             config.model_file.string() + "; set format");
    }
    config.format = detected.format;
  }
  return config;
}

}  // namespace quiver
