#include "runtime/runtime_registry.h"

#include <dlfcn.h>

#include <cstdlib>

#include "common/system.h"
#include "runtime/builtin_models.h"

namespace quiver {
namespace {

struct FormatPlugin {
  const char* format;
  const char* plugin;
};
constexpr FormatPlugin kFormats[] = {
    {"xgboost", "xgboost"}, {"pytorch", "torchscript"}, {"onnx", "onnx"},
    {"sklearn", "python"},  {"custom", "python"},
};

}  // namespace

RuntimeRegistry::RuntimeRegistry(std::vector<std::filesystem::path> plugin_dirs)
    : plugin_dirs_(std::move(plugin_dirs)), builtin_(std::make_unique<BuiltinRuntime>()) {}

RuntimeRegistry::~RuntimeRegistry() {
  // Runtimes are destroyed before their code is unmapped; the handles are deliberately kept
  // open (dlclose of C++ libraries with thread-locals is unsafe), the process is ending anyway.
  plugins_.clear();
}

std::vector<std::filesystem::path> RuntimeRegistry::DefaultPluginDirs() {
  std::vector<std::filesystem::path> dirs;
  if (const char* env = std::getenv("QUIVER_RUNTIME_DIR"); env != nullptr && *env != '\0') {
    dirs.emplace_back(env);
  }
  std::filesystem::path exe = ExecutableDir();
  dirs.push_back(exe / "runtimes");
  dirs.push_back(exe / ".." / "lib" / "quiver" / "runtimes");
  return dirs;
}

std::string RuntimeRegistry::PluginForFormat(std::string_view format) {
  for (const auto& f : kFormats) {
    if (format == f.format) return f.plugin;
  }
  return "";
}

std::string RuntimeRegistry::KnownFormats() {
  std::string s = "echo, add_sub, sleep";
  for (const auto& f : kFormats) {
    s += ", ";
    s += f.format;
  }
  return s;
}

StatusOr<Runtime*> RuntimeRegistry::Get(const std::string& format) {
  if (BuiltinRuntime::Handles(format)) return builtin_.get();
  std::string plugin = PluginForFormat(format);
  if (plugin.empty()) {
    return InvalidArgument("unknown model format '" + format + "'; known formats: " +
                           KnownFormats());
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = plugins_.find(plugin);
  if (it != plugins_.end()) return it->second.get();
  return LoadPlugin(plugin);
}

StatusOr<Runtime*> RuntimeRegistry::LoadPlugin(const std::string& plugin) {
  std::string file = "quiver-" + plugin + ".so";
  std::string looked;
  for (const auto& dir : plugin_dirs_) {
    std::filesystem::path path = dir / file;
    if (!looked.empty()) looked += ", ";
    looked += dir.string();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      return Internal("cannot load runtime plugin " + path.string() + ": " + dlerror());
    }
    auto factory = reinterpret_cast<RuntimeFactoryFn>(dlsym(handle, kRuntimeFactorySymbol));
    if (factory == nullptr) {
      dlclose(handle);
      return Internal("runtime plugin " + path.string() + " has no " + kRuntimeFactorySymbol);
    }
    Runtime* runtime = factory(kRuntimeAbiVersion);
    if (runtime == nullptr) {
      dlclose(handle);
      return Internal("runtime plugin " + path.string() + " was built for another ABI version");
    }
    handles_.push_back(handle);
    plugins_[plugin].reset(runtime);
    return runtime;
  }
  return NotFound("runtime plugin " + file + " not found (looked in " + looked + ")");
}

}  // namespace quiver
