// Appends JSON tokens to a std::string: the response encoder's hot path, with no allocation
// beyond the output string's growth. Numbers use std::to_chars (shortest round-trip form).
// Not thread-safe; one writer per response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace quiver {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(*out) {}

  void Raw(std::string_view s) { out_.append(s); }
  void Char(char c) { out_.push_back(c); }
  // A quoted, escaped string. The input must be UTF-8 (callers check untrusted bytes).
  void String(std::string_view s);
  // `"key":`
  void Key(std::string_view key) {
    String(key);
    out_.push_back(':');
  }
  void Int(int64_t v);
  void Uint(uint64_t v);
  void Bool(bool v) { out_.append(v ? "true" : "false"); }
  void Null() { out_.append("null"); }
  // Non-finite values become null (JSON has no NaN); `keep_point` writes 2.0 as "2.0" so a
  // reader keeps it a float (used for parameters, where int and float differ).
  void Double(double v, bool keep_point = false);
  void Float(float v);

 private:
  std::string& out_;
};

// {"error": message}
std::string ErrorJson(std::string_view message);

}  // namespace quiver
