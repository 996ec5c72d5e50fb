#include "protocol/json_writer.h"

#include <charconv>
#include <cmath>

namespace quiver {

void JsonWriter::String(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out_.push_back('"');
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out_.append(s.data() + start, i - start);
    switch (c) {
      case '"': out_.append("\\\""); break;
      case '\\': out_.append("\\\\"); break;
      case '\n': out_.append("\\n"); break;
      case '\r': out_.append("\\r"); break;
      case '\t': out_.append("\\t"); break;
      case '\b': out_.append("\\b"); break;
      case '\f': out_.append("\\f"); break;
      default: {
        char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
        out_.append(esc, 6);
      }
    }
    start = i + 1;
  }
  out_.append(s.data() + start, s.size() - start);
  out_.push_back('"');
}

void JsonWriter::Int(int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, r.ptr);
}

void JsonWriter::Uint(uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, r.ptr);
}

void JsonWriter::Double(double v, bool keep_point) {
  if (!std::isfinite(v)) {
    Null();
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, r.ptr);
  if (keep_point && std::string_view(buf, r.ptr - buf).find_first_of(".e") == std::string::npos) {
    out_.append(".0");
  }
}

void JsonWriter::Float(float v) {
  if (!std::isfinite(v)) {
    Null();
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out_.append(buf, r.ptr);
}

std::string ErrorJson(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 16);
  JsonWriter w(&out);
  w.Raw("{\"error\":");
  w.String(message);
  w.Char('}');
  return out;
}

}  // namespace quiver
