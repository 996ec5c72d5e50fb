#include "cli/state_dir.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace quiver {

std::string ResolveStateDir(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("QUIVER_STATE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    const passwd* pw = getpwuid(getuid());
    home = pw != nullptr ? pw->pw_dir : "/tmp";
  }
  return std::string(home) + "/.quiver";
}

}  // namespace quiver
