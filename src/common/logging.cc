#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace quiver {

Status InitLogging(std::string_view level, std::string_view format) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidArgument("--log-level: expected trace|debug|info|warn|error|off, got '" +
                           std::string(level) + "'");
  }
  spdlog::drop("quiver");
  auto logger = spdlog::stderr_logger_mt("quiver");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  if (format == "text") {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
  } else if (format == "json") {
    // Messages are escaped by the caller where they may hold quotes; spdlog has no JSON escaping.
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    return InvalidArgument("--log-format: expected text|json, got '" + std::string(format) + "'");
  }
  return Status::Ok();
}

}  // namespace quiver
