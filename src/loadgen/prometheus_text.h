// A reader of the Prometheus text exposition format (version 0.0.4, also what OpenMetrics
// servers send for `Accept: text/plain`): one sample per line, `name{label="value",...} value
// [timestamp]`; comments and blank lines are skipped. Pure functions.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace quiver::loadgen {

struct MetricSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // in the order written, unescaped
  double value = 0;

  // The value of a label, or nullptr when the sample has none of that name.
  const std::string* Label(std::string_view key) const;
};

// Parses a whole exposition. A malformed sample line is an error naming its line number.
StatusOr<std::vector<MetricSample>> ParsePrometheusText(std::string_view text);

}  // namespace quiver::loadgen
