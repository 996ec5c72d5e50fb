#include "autoscale/duration.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace quiver::autoscale {
namespace {

struct Unit {
  std::string_view name;
  int64_t nanos;
};

// Longest names first so that "ms" is not read as "m" followed by garbage.
constexpr Unit kUnits[] = {
    {"ns", 1},
    {"us", 1'000},
    {"\xC2\xB5s", 1'000},  // U+00B5 micro sign
    {"\xCE\xBCs", 1'000},  // U+03BC Greek mu
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

Status NotADuration(std::string_view text) {
  return InvalidArgument("\"" + std::string(text) +
                         "\" is not a duration (expected e.g. 60s, 1m30s, 500ms)");
}

}  // namespace

StatusOr<std::chrono::nanoseconds> ParseGoDuration(std::string_view text) {
  std::string_view rest = text;
  bool negative = false;
  if (!rest.empty() && (rest[0] == '-' || rest[0] == '+')) {
    negative = rest[0] == '-';
    rest.remove_prefix(1);
  }
  if (rest == "0") return std::chrono::nanoseconds(0);
  if (rest.empty()) return NotADuration(text);

  // Accumulated in long double: 64 bits of mantissa hold every int64 nanosecond count exactly
  // on x86-64, and the range check below rejects what would not fit.
  long double total = 0;
  while (!rest.empty()) {
    long double whole = 0;
    size_t i = 0;
    for (; i < rest.size() && IsDigit(rest[i]); ++i) whole = whole * 10 + (rest[i] - '0');
    const size_t whole_digits = i;
    long double fraction = 0;
    size_t fraction_digits = 0;
    if (i < rest.size() && rest[i] == '.') {
      ++i;
      long double scale = 1;
      for (; i < rest.size() && IsDigit(rest[i]); ++i, ++fraction_digits) {
        scale /= 10;
        fraction += (rest[i] - '0') * scale;
      }
    }
    if (whole_digits == 0 && fraction_digits == 0) return NotADuration(text);
    rest.remove_prefix(i);

    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      // Prefer the longest unit name that matches ("ms" over "m").
      if (rest.substr(0, u.name.size()) == u.name &&
          (unit == nullptr || u.name.size() > unit->name.size())) {
        unit = &u;
      }
    }
    if (unit == nullptr) return NotADuration(text);
    rest.remove_prefix(unit->name.size());
    total += (whole + fraction) * static_cast<long double>(unit->nanos);
    if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
      return InvalidArgument("\"" + std::string(text) + "\" is too long a duration");
    }
  }
  auto nanos = static_cast<int64_t>(std::llroundl(total));
  return std::chrono::nanoseconds(negative ? -nanos : nanos);
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  if (ms == 0) return "0s";
  if (ms < 1000) return out + std::to_string(ms) + "ms";
  const int64_t hours = ms / 3'600'000;
  const int64_t minutes = ms / 60'000 % 60;
  const int64_t seconds = ms / 1000 % 60;
  const int64_t millis = ms % 1000;
  if (hours > 0) out += std::to_string(hours) + "h";
  if (minutes > 0) out += std::to_string(minutes) + "m";
  if (seconds > 0 || millis > 0) {
    out += std::to_string(seconds);
    if (millis > 0) {
      std::string frac = std::to_string(1000 + millis).substr(1);  // zero-padded to 3 digits
      while (frac.back() == '0') frac.pop_back();
      out += "." + frac;
    }
    out += "s";
  }
  return out;
}

}  // namespace quiver::autoscale
