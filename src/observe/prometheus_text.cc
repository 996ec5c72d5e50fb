#include "observe/prometheus_text.h"

#include <charconv>
#include <cmath>

#include "observe/metrics_registry.h"

namespace quiver::observe {
namespace {

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void AppendEscaped(std::string* out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

void AppendValue(std::string* out, double v) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
    out->append(buf, end);
  }
}

void AppendValue(std::string* out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

}  // namespace

std::string FormatValue(double v) {
  std::string out;
  AppendValue(&out, v);
  return out;
}

void PrometheusWriter::Family(std::string_view name, std::string_view help, MetricType type) {
  out_->append("# HELP ").append(name).push_back(' ');
  AppendEscaped(out_, help, /*quote=*/false);
  out_->append("\n# TYPE ").append(name).push_back(' ');
  out_->append(TypeName(type)).push_back('\n');
}

void PrometheusWriter::Labels(std::span<const std::string> names,
                              std::span<const std::string> values, std::string_view extra_name,
                              std::string_view extra_value) {
  if (names.empty() && extra_name.empty()) return;
  out_->push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out_->push_back(',');
    out_->append(names[i]).append("=\"");
    AppendEscaped(out_, i < values.size() ? std::string_view(values[i]) : std::string_view(),
                  /*quote=*/true);
    out_->push_back('"');
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out_->push_back(',');
    out_->append(extra_name).append("=\"");
    AppendEscaped(out_, extra_value, /*quote=*/true);
    out_->push_back('"');
  }
  out_->push_back('}');
}

void PrometheusWriter::Sample(std::string_view name, std::span<const std::string> names,
                              std::span<const std::string> values, double value,
                              std::string_view extra_name, std::string_view extra_value) {
  out_->append(name);
  Labels(names, values, extra_name, extra_value);
  out_->push_back(' ');
  AppendValue(out_, value);
  out_->push_back('\n');
}

void PrometheusWriter::Sample(std::string_view name, std::span<const std::string> names,
                              std::span<const std::string> values, uint64_t value,
                              std::string_view extra_name, std::string_view extra_value) {
  out_->append(name);
  Labels(names, values, extra_name, extra_value);
  out_->push_back(' ');
  AppendValue(out_, value);
  out_->push_back('\n');
}

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

}  // namespace quiver::observe
