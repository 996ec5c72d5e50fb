#include "common/curl_api.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>

namespace quiver {
namespace {

struct LoadedCurl {
  CurlApi api{};
  std::string error;  // empty when loaded
};

const LoadedCurl& Loaded() {
  static const LoadedCurl loaded = [] {
    LoadedCurl out;
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      out.error = std::string("cannot load libcurl.so.4 (Debian package libcurl4): ") + dlerror();
      return out;
    }
    auto sym = [&](auto* fn, const char* name) {
      *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(lib, name));
      if (*fn == nullptr && out.error.empty())
        out.error = std::string("libcurl.so.4 has no ") + name;
    };
    CURLcode (*global_init)(long) = nullptr;
    sym(&global_init, "curl_global_init");
    sym(&out.api.easy_init, "curl_easy_init");
    sym(&out.api.easy_cleanup, "curl_easy_cleanup");
    sym(&out.api.easy_setopt, "curl_easy_setopt");
    sym(&out.api.easy_perform, "curl_easy_perform");
    sym(&out.api.easy_getinfo, "curl_easy_getinfo");
    sym(&out.api.easy_strerror, "curl_easy_strerror");
    sym(&out.api.slist_append, "curl_slist_append");
    sym(&out.api.slist_free_all, "curl_slist_free_all");
    // Once, before any handle exists.
    if (out.error.empty() && global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      out.error = "curl_global_init failed";
    }
    return out;
  }();
  return loaded;
}

}  // namespace

StatusOr<const CurlApi*> LoadCurl() {
  const LoadedCurl& loaded = Loaded();
  if (!loaded.error.empty()) return Unavailable(loaded.error);
  return &loaded.api;
}

}  // namespace quiver
