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


Status ParseQueuePolicy(const YAML::Node& n, const std::string& path, BatchingConfig* b) {
  if (!n.IsMap()) return InvalidArgument(path + ": expected a mapping, got " + Describe(n));
  for (const auto& kv : n) {
    std::string key = kv.first.Scalar();
    std::string kp = path + "." + key;
    if (key == "timeout_action") {
      QUIVER_ASSIGN_OR_RETURN(std::string a, ScalarString(kv.second, kp));
      if (a == "REJECT") {
        b->timeout_action = BatchingConfig::TimeoutAction::kReject;
      } else if (a == "DELAY") {
        b->timeout_action = BatchingConfig::TimeoutAction::kDelay;
      } else {
        return InvalidArgument(kp + ": expected REJECT or DELAY, got '" + a + "'");
      }
    } else if (key == "default_timeout_microseconds") {
      QUIVER_ASSIGN_OR_RETURN(int64_t v, ScalarInt(kv.second, kp));
      if (v < 0) return InvalidArgument(kp + ": must be >= 0, got " + std::to_string(v));
      b->default_timeout = std::chrono::microseconds(v);
    } else if (key == "allow_timeout_override") {
      QUIVER_ASSIGN_OR_RETURN(b->allow_timeout_override, ScalarBool(kv.second, kp));
    } else if (key == "max_queue_size") {
      QUIVER_ASSIGN_OR_RETURN(int64_t v, ScalarInt(kv.second, kp));
      if (v < 0) return InvalidArgument(kp + ": must be >= 0, got " + std::to_string(v));
      b->max_queue_size = static_cast<size_t>(v);
    } else {
      return InvalidArgument(kp + ": unknown field (expected timeout_action, "
                                  "default_timeout_microseconds, allow_timeout_override, "
                                  "max_queue_size)");
    }
  }
  return Status::Ok();
}

// Triton's `dynamic_batching:` block.
Status ParseDynamicBatching(const YAML::Node& n, BatchingConfig* b) {
  const std::string path = "dynamic_batching";
  if (n.IsNull()) return Status::Ok();
  if (!n.IsMap()) return InvalidArgument(path + ": expected a mapping, got " + Describe(n));
  for (const auto& kv : n) {
    std::string key = kv.first.Scalar();
    std::string kp = path + "." + key;
    if (key == "preferred_batch_sizes") {
      if (!kv.second.IsSequence()) {
        return InvalidArgument(kp + ": expected a list of integers, got " + Describe(kv.second));
      }
      for (size_t i = 0; i < kv.second.size(); ++i) {
        QUIVER_ASSIGN_OR_RETURN(int64_t v,
                                ScalarInt(kv.second[i], kp + "[" + std::to_string(i) + "]"));
        b->preferred_batch_sizes.push_back(v);
      }
    } else if (key == "max_queue_delay_microseconds" || key == "max_queue_delay") {
      QUIVER_ASSIGN_OR_RETURN(int64_t v, ScalarInt(kv.second, kp));
      if (v < 0) return InvalidArgument(kp + ": must be >= 0, got " + std::to_string(v));
      b->max_queue_delay = std::chrono::microseconds(v);
    } else if (key == "preserve_ordering") {
      QUIVER_ASSIGN_OR_RETURN(b->preserve_ordering, ScalarBool(kv.second, kp));
    } else if (key == "priority_levels") {
      QUIVER_ASSIGN_OR_RETURN(int64_t v, ScalarInt(kv.second, kp));
      if (v < 1 || v > 100) {
        return InvalidArgument(kp + ": must be between 1 and 100, got " + std::to_string(v));
      }
      b->priority_levels = static_cast<int>(v);
    } else if (key == "default_priority_level") {
      QUIVER_ASSIGN_OR_RETURN(int64_t v, ScalarInt(kv.second, kp));
      b->default_priority_level = static_cast<int>(v);
    } else if (key == "default_queue_policy") {
      QUIVER_RETURN_IF_ERROR(ParseQueuePolicy(kv.second, kp, b));
    } else {
      return InvalidArgument(kp + ": unknown field (expected preferred_batch_sizes, "
                                  "max_queue_delay_microseconds, preserve_ordering, "
                                  "priority_levels, default_priority_level, "
                                  "default_queue_policy)");
    }
  }
  return Status::Ok();
}

// KServe's `batcher: {maxBatchSize, maxLatency}` (maxLatency in milliseconds).
Status ParseKServeBatcher(const YAML::Node& n, BatchingConfig* b) {
  if (!n.IsMap()) return InvalidArgument("batcher: expected a mapping, got " + Describe(n));
  b->max_batch_size = 32;                               // KServe's defaults
  b->max_queue_delay = std::chrono::milliseconds(5000);
  for (const auto& kv : n) {
    std::string key = kv.first.Scalar();
    std::string kp = "batcher." + key;
    QUIVER_ASSIGN_OR_RETURN(int64_t v, ScalarInt(kv.second, kp));
    if (key == "maxBatchSize") {
      b->max_batch_size = v;
    } else if (key == "maxLatency") {
      if (v < 0) return InvalidArgument(kp + ": must be >= 0, got " + std::to_string(v));
      b->max_queue_delay = std::chrono::milliseconds(v);
    } else if (key == "timeout") {
      if (v < 0) return InvalidArgument(kp + ": must be >= 0, got " + std::to_string(v));
      b->default_timeout = std::chrono::seconds(v);
    } else {
      return InvalidArgument(kp + ": unknown field (expected maxBatchSize, maxLatency, timeout)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateBatching(const BatchingConfig& b) {
  if (b.max_batch_size < 0) {
    return InvalidArgument("max_batch_size: must be >= 0, got " + std::to_string(b.max_batch_size));
  }
  for (size_t i = 0; i < b.preferred_batch_sizes.size(); ++i) {
    int64_t p = b.preferred_batch_sizes[i];
    if (p < 1 || p > b.max_batch_size) {
      return InvalidArgument("dynamic_batching.preferred_batch_sizes[" + std::to_string(i) +
                             "]: must be between 1 and max_batch_size (" +
                             std::to_string(b.max_batch_size) + "), got " + std::to_string(p));
    }
  }
  if (b.default_priority_level < 1 || b.default_priority_level > b.priority_levels) {
    return InvalidArgument("dynamic_batching.default_priority_level: must be between 1 and "
                           "priority_levels (" + std::to_string(b.priority_levels) + "), got " +
                           std::to_string(b.default_priority_level));
  }
  return Status::Ok();
}

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
  bool saw_max_batch = false, saw_dynamic = false;
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
    } else if (key == "max_batch_size") {
      QUIVER_ASSIGN_OR_RETURN(config.batching.max_batch_size, ScalarInt(v, key));
      saw_max_batch = true;
    } else if (key == "dynamic_batching") {
      QUIVER_RETURN_IF_ERROR(ParseDynamicBatching(v, &config.batching).WithPrefix("config.yaml"));
      saw_dynamic = true;
    } else if (key == "batcher") {
      QUIVER_RETURN_IF_ERROR(ParseKServeBatcher(v, &config.batching).WithPrefix("config.yaml"));
      saw_max_batch = true;
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
                             "inline_execution, inputs, outputs, max_batch_size, "
                             "dynamic_batching, batcher, parameters)");
    }
  }
  if (saw_dynamic && !saw_max_batch) {
    return InvalidArgument("config.yaml: dynamic_batching needs max_batch_size > 0");
  }
  config.batching.explicitly_set = saw_max_batch;
  QUIVER_RETURN_IF_ERROR(ValidateBatching(config.batching).WithPrefix("config.yaml"));
  if (!config.format.empty() && RuntimeRegistry::PluginForFormat(config.format).empty() &&
      config.format != "echo" && config.format != "add_sub" && config.format != "sleep") {
    return InvalidArgument("config.yaml: format: unknown format '" + config.format +
                           "'; known formats: " + RuntimeRegistry::KnownFormats());
  }
  return config;
}

StatusOr<ModelConfig> ReadModelConfig(const fs::path& given_dir, const std::string& name) {
  std::error_code ec;
  // Absolute, so that model files stay valid for code that runs elsewhere (Python workers start
  // in the model's folder) whatever the server's working directory.
  fs::path dir = fs::absolute(given_dir, ec);
  if (ec) dir = given_dir;
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
