// ResolveConfig: a component's scaling fields and autoscaling.knative.dev/* annotations →
// KpaConfig, with Knative's validation rules and error texts that name the key and the value.

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "autoscale/duration.h"
#include "autoscale/kpa.h"

namespace quiver::autoscale {
namespace {

using std::chrono::nanoseconds;
using namespace std::chrono_literals;

constexpr std::string_view kPrefix = "autoscaling.knative.dev/";
constexpr std::string_view kKpaClass = "kpa.autoscaling.knative.dev";
constexpr std::string_view kHpaClass = "hpa.autoscaling.knative.dev";
constexpr double kTargetMin = 0.01;        // Knative's TargetMin
constexpr double kRpsTargetDefault = 200;  // requests-per-second-target-default
constexpr nanoseconds kWindowMin = 6s;
constexpr nanoseconds kWindowMax = 1h;

// The annotations a revision may carry. Knative reads each under its kebab-case key and,
// for most, a camelCase alias from older releases (kmap.KeyPriority); both are accepted here.
enum Key {
  kTarget,
  kTargetUtilization,
  kMetricKey,
  kWindow,
  kPanicWindowPercentage,
  kPanicThresholdPercentage,
  kMinScale,
  kMaxScale,
  kInitialScale,
  kActivationScale,
  kScaleDownDelay,
  kRetention,
  kTargetBurstCapacity,
  kClass,
  kAggregationAlgorithm,
  kKeyCount,
};

struct KeyNames {
  std::string_view name;
  std::string_view alias;  // empty: none
};

constexpr std::array<KeyNames, kKeyCount> kKeys = {{
    {"target", ""},
    {"target-utilization-percentage", "targetUtilizationPercentage"},
    {"metric", ""},
    {"window", ""},
    {"panic-window-percentage", "panicWindowPercentage"},
    {"panic-threshold-percentage", "panicThresholdPercentage"},
    {"min-scale", "minScale"},
    {"max-scale", "maxScale"},
    {"initial-scale", "initialScale"},
    {"activation-scale", "activationScale"},
    {"scale-down-delay", "scaleDownDelay"},
    {"scale-to-zero-pod-retention-period", "scaleToZeroPodRetentionPeriod"},
    {"target-burst-capacity", "targetBurstCapacity"},
    {"class", ""},
    {"metric-aggregation-algorithm", "metricAggregationAlgorithm"},
}};

// Keys users may know from Knative's config-autoscaler ConfigMap, which are cluster-wide
// there and `quiver up` settings here, not per-revision annotations.
constexpr std::string_view kGlobalOnly[] = {
    "scale-to-zero-grace-period", "enable-scale-to-zero", "max-scale-up-rate",
    "max-scale-down-rate",        "stable-window",        "panic-window",
    "activator-capacity",         "max-scale-limit",      "allow-zero-initial-scale",
};

struct Found {
  std::string key;  // the full key as written
  std::string value;
};

class Errors {
 public:
  void Add(std::string message) { messages_.push_back(std::move(message)); }
  bool empty() const { return messages_.empty(); }
  Status ToStatus() const {
    std::string joined;
    for (const std::string& m : messages_) {
      if (!joined.empty()) joined += "; ";
      joined += m;
    }
    return InvalidArgument(std::move(joined));
  }

 private:
  std::vector<std::string> messages_;
};

std::optional<double> ParseNumber(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<int64_t> ParseInteger(std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string Num(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::string s = std::to_string(v);  // 6 decimals
  while (s.back() == '0') s.pop_back();
  return s;
}

Millis ToMillis(nanoseconds d) { return std::chrono::duration_cast<Millis>(d); }

// Reads the annotations under the prefix into `found`, reporting unknown and duplicate keys.
void CollectAnnotations(const std::map<std::string, std::string>& annotations,
                        std::array<std::optional<Found>, kKeyCount>& found, Errors& errors) {
  for (const auto& [key, value] : annotations) {
    if (key.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    const std::string_view suffix = std::string_view(key).substr(kPrefix.size());
    int index = -1;
    for (int i = 0; i < kKeyCount; ++i) {
      if (suffix == kKeys[i].name || (!kKeys[i].alias.empty() && suffix == kKeys[i].alias)) {
        index = i;
      }
    }
    if (index < 0) {
      if (std::find(std::begin(kGlobalOnly), std::end(kGlobalOnly), suffix) !=
          std::end(kGlobalOnly)) {
        errors.Add("annotation " + key + ": " + std::string(suffix) +
                   " is a cluster-wide setting in Knative, set on `quiver up`, not per revision");
      } else {
        std::string known;
        for (const KeyNames& k : kKeys) known += (known.empty() ? "" : ", ") + std::string(k.name);
        errors.Add("annotation " + key + ": unknown autoscaling annotation (known: " + known + ")");
      }
      continue;
    }
    if (found[index]) {
      errors.Add("annotations " + found[index]->key + " and " + key +
                 " are the same setting; set only one");
      continue;
    }
    found[index] = Found{key, value};
  }
}

// Knative's defaults are validated too, since they come from `quiver up` flags.
void ValidateDefaults(const KpaConfig& d, Errors& errors) {
  auto bad = [&errors](std::string_view name, std::string_view expected, std::string got) {
    errors.Add("autoscaler default " + std::string(name) + ": expected " + std::string(expected) +
               ", got " + got);
  };
  if (!(d.total_target >= kTargetMin)) {
    bad("container-concurrency-target-default", "a number >= 0.01", Num(d.total_target));
  }
  if (!(d.target_utilization > 0 && d.target_utilization <= 1)) {
    bad("target utilization", "a fraction in (0, 1]", Num(d.target_utilization));
  }
  if (d.stable_window < kWindowMin || d.stable_window > kWindowMax ||
      d.stable_window % 1000 != Millis(0)) {
    bad("stable-window", "whole seconds between 6s and 1h", FormatDuration(d.stable_window));
  }
  if (d.panic_window < Millis(1000) || d.panic_window > d.stable_window) {
    bad("panic window", "between 1s and the stable window", FormatDuration(d.panic_window));
  }
  if (!(d.panic_threshold >= 1.1 && d.panic_threshold <= 10)) {
    bad("panic-threshold", "a factor between 1.1 and 10", Num(d.panic_threshold));
  }
  if (!(d.max_scale_up_rate > 1)) bad("max-scale-up-rate", "> 1", Num(d.max_scale_up_rate));
  if (!(d.max_scale_down_rate > 1)) {
    bad("max-scale-down-rate", "> 1", Num(d.max_scale_down_rate));
  }
  if (d.initial_scale < 0) bad("initial-scale", "an integer >= 0", std::to_string(d.initial_scale));
  if (d.activation_scale < 1) {
    bad("activation-scale", "an integer >= 1", std::to_string(d.activation_scale));
  }
  if (d.scale_down_delay < Millis(0) || d.scale_down_delay > kWindowMax ||
      d.scale_down_delay % 1000 != Millis(0)) {
    bad("scale-down-delay", "whole seconds between 0s and 1h", FormatDuration(d.scale_down_delay));
  }
  if (d.scale_to_zero_grace < Millis(0)) {
    bad("scale-to-zero-grace-period", ">= 0s", FormatDuration(d.scale_to_zero_grace));
  }
  if (d.scale_to_zero_retention < Millis(0) || d.scale_to_zero_retention > kWindowMax) {
    bad("scale-to-zero-pod-retention-period", "between 0s and 1h",
        FormatDuration(d.scale_to_zero_retention));
  }
  if (!(d.target_burst_capacity >= 0 || d.target_burst_capacity == -1)) {
    bad("target-burst-capacity", "a number >= 0 or -1", Num(d.target_burst_capacity));
  }
}

}  // namespace

StatusOr<KpaConfig> ResolveConfig(const ScalingInputs& inputs, const KpaConfig& defaults) {
  Errors errors;
  ValidateDefaults(defaults, errors);
  if (!errors.empty()) return errors.ToStatus();

  std::array<std::optional<Found>, kKeyCount> found;
  CollectAnnotations(inputs.annotations, found, errors);

  KpaConfig config = defaults;
  const auto prefix = [](const Found& f) { return "annotation " + f.key + ": "; };

  // Each reader below reports its own error and leaves the default in place, so that one
  // call reports every bad annotation.
  const auto number = [&](Key k, double min, double max, std::string_view expected,
                          std::optional<double> also_allowed = {}) -> std::optional<double> {
    if (!found[k]) return std::nullopt;
    std::optional<double> v = ParseNumber(found[k]->value);
    if (!v || !((*v >= min && *v <= max) || (also_allowed && *v == *also_allowed))) {
      errors.Add(prefix(*found[k]) + "expected " + std::string(expected) + ", got " +
                 found[k]->value);
      return std::nullopt;
    }
    return v;
  };
  const auto integer = [&](Key k, int64_t min) -> std::optional<int> {
    if (!found[k]) return std::nullopt;
    std::optional<int64_t> v = ParseInteger(found[k]->value);
    if (!v || *v < min || *v > std::numeric_limits<int32_t>::max()) {
      errors.Add(prefix(*found[k]) + "expected an integer >= " + std::to_string(min) + ", got " +
                 found[k]->value);
      return std::nullopt;
    }
    return static_cast<int>(*v);
  };
  // `whole_seconds`: Knative requires second precision for the window and the delay.
  const auto duration = [&](Key k, nanoseconds min, nanoseconds max,
                            bool whole_seconds) -> std::optional<Millis> {
    if (!found[k]) return std::nullopt;
    const std::string range = "a duration between " + FormatDuration(ToMillis(min)) + " and " +
                              FormatDuration(ToMillis(max));
    StatusOr<nanoseconds> d = ParseGoDuration(found[k]->value);
    if (!d.ok() || *d < min || *d > max) {
      errors.Add(prefix(*found[k]) + "expected " + range + ", got " + found[k]->value);
      return std::nullopt;
    }
    if (whole_seconds && *d % std::chrono::seconds(1) != nanoseconds(0)) {
      errors.Add(prefix(*found[k]) + "expected whole seconds, got " + found[k]->value);
      return std::nullopt;
    }
    if (!whole_seconds && *d % Millis(1) != nanoseconds(0)) {
      errors.Add(prefix(*found[k]) + "expected whole milliseconds, got " + found[k]->value);
      return std::nullopt;
    }
    return ToMillis(*d);
  };

  // Class: only the KPA runs in `quiver up`.
  if (found[kClass] && found[kClass]->value != kKpaClass) {
    if (found[kClass]->value == kHpaClass || found[kClass]->value == "hpa") {
      errors.Add(prefix(*found[kClass]) + "`quiver up` scales with the KPA only (" +
                 std::string(kKpaClass) + "); the HPA class needs a cluster (quiver render), " +
                 "got " + found[kClass]->value);
    } else {
      errors.Add(prefix(*found[kClass]) + "expected " + std::string(kKpaClass) + ", got " +
                 found[kClass]->value);
    }
  }
  if (found[kAggregationAlgorithm] && found[kAggregationAlgorithm]->value != "linear") {
    errors.Add(prefix(*found[kAggregationAlgorithm]) +
               "expected linear (the only aggregation `quiver up` implements), got " +
               found[kAggregationAlgorithm]->value);
  }

  // Metric: the annotation wins over scaleMetric.
  const auto parse_metric = [](std::string_view v) -> std::optional<Metric> {
    if (v == "concurrency") return Metric::kConcurrency;
    if (v == "rps") return Metric::kRps;
    return std::nullopt;
  };
  const std::string metric_hint =
      "expected concurrency or rps (cpu and memory need the HPA class, which `quiver up` does "
      "not run), got ";
  config.metric = Metric::kConcurrency;
  if (found[kMetricKey]) {
    if (auto m = parse_metric(found[kMetricKey]->value)) {
      config.metric = *m;
    } else {
      errors.Add(prefix(*found[kMetricKey]) + metric_hint + found[kMetricKey]->value);
    }
  } else if (!inputs.scale_metric.empty()) {
    if (auto m = parse_metric(inputs.scale_metric)) {
      config.metric = *m;
    } else {
      errors.Add("scaleMetric: " + metric_hint + inputs.scale_metric);
    }
  }

  // Fields, checked whether or not an annotation overrides them: a bad field is a bad spec.
  if (inputs.container_concurrency < 0) {
    errors.Add("containerConcurrency: expected an integer >= 0 (0: no limit), got " +
               std::to_string(inputs.container_concurrency));
  }
  if (inputs.min_replicas < 0) {
    errors.Add("minReplicas: expected an integer >= 0, got " + std::to_string(inputs.min_replicas));
  }
  if (inputs.max_replicas && *inputs.max_replicas < 0) {
    errors.Add("maxReplicas: expected an integer >= 0 (0: unbounded), got " +
               std::to_string(*inputs.max_replicas));
  }
  if (inputs.scale_target && *inputs.scale_target < 1) {
    errors.Add("scaleTarget: expected an integer >= 1, got " +
               std::to_string(*inputs.scale_target));
  }
  config.container_concurrency = std::max(0, inputs.container_concurrency);

  // Target (resources/target.go): the per-replica total, then the utilisation.
  const bool concurrency = config.metric == Metric::kConcurrency;
  double total = concurrency ? (config.container_concurrency > 0
                                    ? static_cast<double>(config.container_concurrency)
                                    : defaults.total_target)
                             : kRpsTargetDefault;
  std::optional<double> target =
      number(kTarget, kTargetMin, std::numeric_limits<double>::max(), "a number >= 0.01");
  if (!target && !found[kTarget] && inputs.scale_target && *inputs.scale_target >= 1) {
    target = *inputs.scale_target;
  }
  if (target) {
    total = *target;
    if (concurrency && config.container_concurrency > 0) {
      total = std::min(total, static_cast<double>(config.container_concurrency));
    }
  }
  config.total_target = total;
  if (auto pct = number(kTargetUtilization, 1, 100, "a percentage between 1 and 100")) {
    config.target_utilization = *pct / 100;
  }
  // Rounded to 6 decimals like the window averages, so 100 × 0.7 is exactly 70.
  config.target =
      std::max(kTargetMin, std::round(config.total_target * config.target_utilization * 1e6) / 1e6);

  // Windows and panic.
  if (auto w = duration(kWindow, kWindowMin, kWindowMax, /*whole_seconds=*/true)) {
    config.stable_window = *w;
  }
  double panic_pct = 100.0 * static_cast<double>(defaults.panic_window.count()) /
                     static_cast<double>(defaults.stable_window.count());
  if (auto p = number(kPanicWindowPercentage, 1, 100, "a percentage between 1 and 100")) {
    panic_pct = *p;
  }
  {
    const double seconds =
        std::round(static_cast<double>(config.stable_window.count()) / 1000.0 * panic_pct / 100);
    config.panic_window = Millis(static_cast<int64_t>(std::max(1.0, seconds)) * 1000);
  }
  if (auto t = number(kPanicThresholdPercentage, 110, 1000, "a percentage between 110 and 1000")) {
    config.panic_threshold = *t / 100;
  }

  // Scale bounds: the annotation wins over the field.
  std::string min_source = "minReplicas";
  std::string max_source = "maxReplicas";
  config.min_scale = std::max(0, inputs.min_replicas);
  config.max_scale = std::max(0, inputs.max_replicas.value_or(0));
  if (auto v = integer(kMinScale, 0)) {
    config.min_scale = *v;
    min_source = "annotation " + found[kMinScale]->key;
  }
  if (auto v = integer(kMaxScale, 0)) {
    config.max_scale = *v;
    max_source = "annotation " + found[kMaxScale]->key;
  }
  if (config.max_scale > 0 && config.max_scale < config.min_scale) {
    errors.Add(max_source + ": " + std::to_string(config.max_scale) + " is less than the minimum " +
               std::to_string(config.min_scale) + " set by " + min_source);
  }
  if (auto v = integer(kInitialScale, 0)) {
    // Knative needs allow-zero-initial-scale for 0; here 0 is allowed exactly when the
    // revision may sit at zero anyway, i.e. its minimum is 0.
    if (*v == 0 && config.min_scale > 0) {
      errors.Add(prefix(*found[kInitialScale]) +
                 "0 is allowed only when the minimum scale is 0, but " + min_source + " is " +
                 std::to_string(config.min_scale));
    } else {
      config.initial_scale = *v;
    }
  }
  if (auto v = integer(kActivationScale, 1)) config.activation_scale = *v;

  if (auto d = duration(kScaleDownDelay, 0s, kWindowMax, /*whole_seconds=*/true)) {
    config.scale_down_delay = *d;
  }
  if (auto d = duration(kRetention, 0s, kWindowMax, /*whole_seconds=*/false)) {
    config.scale_to_zero_retention = *d;
  }
  if (auto v = number(kTargetBurstCapacity, 0, std::numeric_limits<double>::max(),
                      "a number >= 0, or -1", /*also_allowed=*/-1.0)) {
    config.target_burst_capacity = *v;
  }

  if (!errors.empty()) return errors.ToStatus();
  return config;
}

}  // namespace quiver::autoscale
