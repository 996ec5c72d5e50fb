#include "loadgen/prometheus_text.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace quiver::loadgen {
namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

void SkipSpaces(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

bool ParseName(std::string_view s, size_t& i, std::string* out) {
  if (i >= s.size() || !IsNameStart(s[i])) return false;
  size_t start = i;
  while (i < s.size() && IsNameChar(s[i])) ++i;
  out->assign(s.substr(start, i - start));
  return true;
}

// A double as Prometheus writes it: Go's float syntax, with NaN, +Inf and -Inf.
bool ParseValue(std::string_view text, double* out) {
  if (text == "NaN") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (text == "+Inf" || text == "Inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && ptr == text.data() + text.size();
}

// Parses `{a="x",b="y"}` starting at s[i] == '{'.
bool ParseLabels(std::string_view s, size_t& i,
                 std::vector<std::pair<std::string, std::string>>* labels) {
  ++i;  // '{'
  while (true) {
    SkipSpaces(s, i);
    if (i < s.size() && s[i] == '}') {
      ++i;
      return true;
    }
    std::string key;
    if (!ParseName(s, i, &key)) return false;
    SkipSpaces(s, i);
    if (i >= s.size() || s[i] != '=') return false;
    ++i;
    SkipSpaces(s, i);
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    std::string value;
    while (true) {
      if (i >= s.size()) return false;
      char c = s[i++];
      if (c == '"') break;
      if (c == '\\') {
        if (i >= s.size()) return false;
        char e = s[i++];
        value.push_back(e == 'n' ? '\n' : e);  // \\ -> \, \" -> ", \n -> newline
      } else {
        value.push_back(c);
      }
    }
    labels->emplace_back(std::move(key), std::move(value));
    SkipSpaces(s, i);
    if (i < s.size() && s[i] == ',') ++i;
  }
}

}  // namespace

const std::string* MetricSample::Label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return &v;
  }
  return nullptr;
}

StatusOr<std::vector<MetricSample>> ParsePrometheusText(std::string_view text) {
  std::vector<MetricSample> samples;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t i = 0;
    SkipSpaces(line, i);
    if (i == line.size() || line[i] == '#') continue;
    auto bad = [&](std::string_view why) {
      return InvalidArgument("metrics line " + std::to_string(line_no) + ": " + std::string(why) +
                             ": '" + std::string(line.substr(0, 120)) + "'");
    };
    MetricSample sample;
    if (!ParseName(line, i, &sample.name)) return bad("expected a metric name");
    if (i < line.size() && line[i] == '{' && !ParseLabels(line, i, &sample.labels)) {
      return bad("malformed labels");
    }
    SkipSpaces(line, i);
    size_t value_start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (!ParseValue(line.substr(value_start, i - value_start), &sample.value)) {
      return bad("expected a number after the name");
    }
    // An optional timestamp follows; it is not used.
    samples.push_back(std::move(sample));
  }
  return samples;
}

}  // namespace quiver::loadgen
