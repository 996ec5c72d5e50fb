// RuntimeRegistry: finds the runtime for a model format. Built-in formats are served in-process;
// framework formats come from plugin shared libraries (`quiver-<plugin>.so`) that are loaded
// with dlopen the first time a model needs them, so a server without XGBoost models never maps
// libxgboost. Thread-safe; plugins stay loaded for the life of the process.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/model.h"

namespace quiver {

class RuntimeRegistry {
 public:
  // `plugin_dirs` are searched in order for plugin files.
  explicit RuntimeRegistry(std::vector<std::filesystem::path> plugin_dirs);
  ~RuntimeRegistry();

  // The directories searched by default: $QUIVER_RUNTIME_DIR, <exe dir>/runtimes,
  // <exe dir>/../lib/quiver/runtimes.
  static std::vector<std::filesystem::path> DefaultPluginDirs();

  // The plugin that serves a format ("xgboost" -> "xgboost", "pytorch" -> "torchscript",
  // "onnx" -> "onnx", "sklearn"/"custom" -> "python"); empty for built-in or unknown formats.
  static std::string PluginForFormat(std::string_view format);
  // Every format name Quiver knows (built-in and plugin), for messages.
  static std::string KnownFormats();

  // Returns the runtime for `format`, loading its plugin if needed. NotFound names the format
  // and where the plugin was looked for; the pointer lives as long as the registry.
  StatusOr<Runtime*> Get(const std::string& format);

 private:
  StatusOr<Runtime*> LoadPlugin(const std::string& plugin);

  std::vector<std::filesystem::path> plugin_dirs_;
  std::mutex mu_;
  std::unique_ptr<Runtime> builtin_;
  std::map<std::string, std::unique_ptr<Runtime>> plugins_;  // guarded by mu_
  std::vector<void*> handles_;                                // guarded by mu_
};

}  // namespace quiver
