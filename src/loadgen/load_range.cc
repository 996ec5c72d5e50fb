#include "loadgen/load_range.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

namespace quiver::loadgen {
namespace {

// Ranges are never long: a sweep of more than this many levels is a typo (`1:100000`).
constexpr size_t kMaxLevels = 10000;

struct RangeParts {
  double start = 0;
  double end = 0;
  double step = 1;
  bool factor = false;
};

StatusOr<double> ParseNumber(std::string_view text, std::string_view what, std::string_view spec) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(v)) {
    return InvalidArgument("'" + std::string(spec) + "': " + std::string(what) +
                           " is not a number ('" + std::string(text) + "')");
  }
  return v;
}

StatusOr<RangeParts> SplitRange(std::string_view spec) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (true) {
    size_t colon = spec.find(':', pos);
    parts.push_back(spec.substr(pos, colon == std::string_view::npos ? spec.npos : colon - pos));
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  if (parts.size() > 3) {
    return InvalidArgument("'" + std::string(spec) + "': expected START[:END[:STEP]]");
  }
  RangeParts r;
  QUIVER_ASSIGN_OR_RETURN(r.start, ParseNumber(parts[0], "START", spec));
  r.end = r.start;
  if (parts.size() >= 2) {
    QUIVER_ASSIGN_OR_RETURN(r.end, ParseNumber(parts[1], "END", spec));
  }
  if (parts.size() == 3) {
    std::string_view step = parts[2];
    if (!step.empty() && (step[0] == 'x' || step[0] == 'X' || step[0] == '*')) {
      r.factor = true;
      step.remove_prefix(1);
    }
    QUIVER_ASSIGN_OR_RETURN(r.step, ParseNumber(step, r.factor ? "FACTOR" : "STEP", spec));
  }
  if (r.start <= 0) {
    return InvalidArgument("'" + std::string(spec) + "': START must be greater than 0");
  }
  if (r.end < r.start) {
    return InvalidArgument("'" + std::string(spec) + "': END must not be below START");
  }
  if (r.factor && r.step <= 1) {
    return InvalidArgument("'" + std::string(spec) + "': the factor after 'x' must be above 1");
  }
  if (!r.factor && r.step <= 0) {
    return InvalidArgument("'" + std::string(spec) + "': STEP must be greater than 0");
  }
  return r;
}

StatusOr<std::vector<double>> Expand(const RangeParts& r, std::string_view spec) {
  std::vector<double> levels;
  // A small tolerance so that 0.1-steps land on END despite binary fractions.
  const double limit = r.end * (1 + 1e-9);
  for (double v = r.start; v <= limit; v = r.factor ? v * r.step : v + r.step) {
    if (levels.size() == kMaxLevels) {
      return InvalidArgument("'" + std::string(spec) + "': more than " +
                             std::to_string(kMaxLevels) + " levels");
    }
    levels.push_back(v);
  }
  return levels;
}

}  // namespace

StatusOr<std::vector<int64_t>> ParseConcurrencyRange(std::string_view spec) {
  QUIVER_ASSIGN_OR_RETURN(RangeParts r, SplitRange(spec));
  for (double v : {r.start, r.end}) {
    if (v != std::floor(v) || v > 1e6) {
      return InvalidArgument("'" + std::string(spec) +
                             "': concurrency must be a whole number from 1 to 1000000");
    }
  }
  if (!r.factor && r.step != std::floor(r.step)) {
    return InvalidArgument("'" + std::string(spec) + "': STEP must be a whole number");
  }
  std::vector<int64_t> out;
  const auto end = static_cast<int64_t>(r.end);
  for (auto c = static_cast<int64_t>(r.start); c <= end;) {
    if (out.size() == kMaxLevels) {
      return InvalidArgument("'" + std::string(spec) + "': more than " +
                             std::to_string(kMaxLevels) + " levels");
    }
    out.push_back(c);
    // A factor is applied to whole numbers and always moves up by at least one (x1.5 from 1
    // gives 1 2 3 4 6 ...).
    c = r.factor ? std::max(c + 1, static_cast<int64_t>(std::floor(c * r.step)))
                 : c + static_cast<int64_t>(r.step);
  }
  return out;
}

StatusOr<std::vector<double>> ParseRequestRateRange(std::string_view spec) {
  QUIVER_ASSIGN_OR_RETURN(RangeParts r, SplitRange(spec));
  if (r.end > 1e7) {
    return InvalidArgument("'" + std::string(spec) + "': rates above 10000000/s are not supported");
  }
  return Expand(r, spec);
}

}  // namespace quiver::loadgen
