// Writing the Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` lines,
// then one sample a line, `name{label="value",...} value`. HELP text escapes `\` and newline;
// label values escape `\`, `"` and newline; values print in the shortest form that reads back
// exactly, with `+Inf`, `-Inf` and `NaN` spelled as Prometheus does. Not thread-safe: one writer
// per scrape.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace quiver::observe {

enum class MetricType;

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

class PrometheusWriter {
 public:
  explicit PrometheusWriter(std::string* out) : out_(out) {}

  // Starts a family: its HELP and TYPE lines.
  void Family(std::string_view name, std::string_view help, MetricType type);

  // One sample. `names` and `values` pair up (same length); `extra_name`/`extra_value`, when
  // set, is one more label written last (a histogram's `le`).
  void Sample(std::string_view name, std::span<const std::string> names,
              std::span<const std::string> values, double value, std::string_view extra_name = {},
              std::string_view extra_value = {});
  void Sample(std::string_view name, std::span<const std::string> names,
              std::span<const std::string> values, uint64_t value, std::string_view extra_name = {},
              std::string_view extra_value = {});
  // A sample without labels.
  void Sample(std::string_view name, double value) { Sample(name, {}, {}, value); }

 private:
  void Labels(std::span<const std::string> names, std::span<const std::string> values,
              std::string_view extra_name, std::string_view extra_value);
  std::string* out_;
};

// A value as the exposition writes it: shortest round-trip form, `+Inf`, `-Inf`, `NaN`.
std::string FormatValue(double v);

// Whether `name` is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name
// ([a-zA-Z_][a-zA-Z0-9_]*, not starting with `__`).
bool ValidMetricName(std::string_view name);
bool ValidLabelName(std::string_view name);

}  // namespace quiver::observe
