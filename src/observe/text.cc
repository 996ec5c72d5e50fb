#include "observe/text.h"

#include <simdjson.h>

#include <cstdio>
#include <ctime>

namespace quiver::observe {

std::string_view JsonSafe(std::string_view s, std::string* storage) {
  bool ascii = true;
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii || simdjson::validate_utf8(s.data(), s.size())) return s;
  storage->assign(s);
  for (char& c : *storage) {
    if (static_cast<unsigned char>(c) >= 0x80) c = '?';
  }
  return *storage;
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()) %
            std::chrono::seconds(1);
  if (us.count() < 0) us += std::chrono::seconds(1);
  std::tm tm;
  gmtime_r(&secs, &tm);
  char buf[48];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%06ldZ", static_cast<long>(us.count()));
  return buf;
}

}  // namespace quiver::observe
