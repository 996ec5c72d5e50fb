// Process-wide logging set-up. Code logs through spdlog's default logger (spdlog::info, ...);
// this only decides level and format once at start-up. Thread-safe after InitLogging returns.
#pragma once

#include <string_view>

#include "common/status.h"

namespace quiver {

// level: trace|debug|info|warn|error|off. format: text|json.
Status InitLogging(std::string_view level, std::string_view format);

}  // namespace quiver
