#include "runtime/model.h"

#include <charconv>

namespace quiver {

StatusOr<int64_t> ModelConfig::IntParameter(const std::string& key, int64_t fallback) const {
  auto it = parameters.find(key);
  if (it == parameters.end()) return fallback;
  const std::string& s = it->second;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return InvalidArgument("parameters." + key + ": expected an integer, got '" + s + "'");
  }
  return v;
}

}  // namespace quiver
