// Small text helpers shared by the observe writers (access log, OTLP, payload-log files).
// Pure functions.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "protocol/json_writer.h"

namespace quiver::observe {

// `s` unchanged when it is valid UTF-8, otherwise with every byte >= 0x80 replaced by '?', so
// that client-controlled text (paths, ids) cannot make a JSON document invalid.
std::string_view JsonSafe(std::string_view s, std::string* storage);
inline std::string JsonSafe(std::string_view s) {
  std::string storage;
  std::string_view v = JsonSafe(s, &storage);
  return storage.empty() ? std::string(v) : storage;
}

// w.String(s) for client-controlled text: copies only when `s` is not valid UTF-8.
inline void WriteSafeString(JsonWriter& w, std::string_view s) {
  std::string storage;
  w.String(JsonSafe(s, &storage));
}

// RFC 3339 UTC with microseconds: 2024-05-01T12:00:00.123456Z.
std::string Rfc3339(std::chrono::system_clock::time_point t);

}  // namespace quiver::observe
