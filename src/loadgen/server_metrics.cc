#include "loadgen/server_metrics.h"

#include <map>

namespace quiver::loadgen {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool StripSuffix(std::string_view& s, std::string_view suffix) {
  if (!EndsWith(s, suffix)) return false;
  s.remove_suffix(suffix.size());
  return true;
}

// Microseconds per unit of a name ending in a time unit; 0 when it has none.
double MicrosPerUnit(std::string_view base) {
  if (EndsWith(base, "_seconds")) return 1e6;
  if (EndsWith(base, "_ms") || EndsWith(base, "_milliseconds")) return 1e3;
  if (EndsWith(base, "_us") || EndsWith(base, "_microseconds")) return 1;
  if (EndsWith(base, "_ns") || EndsWith(base, "_nanoseconds")) return 1e-3;
  return 0;
}

bool IsModel(const MetricSample& s, std::string_view model, std::string_view version) {
  const std::string* m = s.Label("model");
  if (m == nullptr) m = s.Label("model_name");
  if (m == nullptr || *m != model) return false;
  const std::string* v = s.Label("version");
  return version.empty() || v == nullptr || *v == version;
}

// Priority of a request counter by name; 0 when the sample is not one.
int RequestCounterRank(std::string_view name) {
  if (name.find("pending") != name.npos || name.find("fail") != name.npos) return 0;
  if (name.find("request_success") != name.npos) return 3;
  if (EndsWith(name, "requests_total")) return 2;
  if (name.find("request_count") != name.npos) return 1;
  return 0;
}

struct Accumulated {
  ServerStage stage;
  double micros_per_unit = 0;
  double sum = 0, count = 0, value = 0;
  bool has_sum = false, has_count = false, has_value = false;
};

}  // namespace

ServerTimeSnapshot ExtractServerTimes(const std::vector<MetricSample>& samples,
                                      std::string_view model, std::string_view version) {
  std::map<std::string, Accumulated, std::less<>> families;
  std::map<std::string, double, std::less<>> counters;  // request counters by name
  for (const MetricSample& s : samples) {
    if (!IsModel(s, model, version)) continue;
    if (s.Label("quantile") != nullptr || s.Label("le") != nullptr) continue;
    std::string_view name = s.name;
    if (RequestCounterRank(name) > 0) counters[s.name] += s.value;
    bool queue = name.find("queue") != name.npos;
    bool compute = name.find("compute") != name.npos;
    if (queue == compute) continue;  // neither, or ambiguous
    if (EndsWith(name, "_bucket") || EndsWith(name, "_created")) continue;
    enum { kSum, kCount, kValue } part = kValue;
    std::string_view base = name;
    if (StripSuffix(base, "_sum")) {
      part = kSum;
    } else if (StripSuffix(base, "_count")) {
      part = kCount;
    }
    StripSuffix(base, "_total");
    double unit = MicrosPerUnit(base);
    if (unit == 0) continue;
    Accumulated& a = families[std::string(base)];
    a.stage = queue ? ServerStage::kQueue : ServerStage::kCompute;
    a.micros_per_unit = unit;
    switch (part) {
      case kSum:
        a.sum += s.value;
        a.has_sum = true;
        break;
      case kCount:
        a.count += s.value;
        a.has_count = true;
        break;
      case kValue:
        a.value += s.value;
        a.has_value = true;
        break;
    }
  }
  // The request counter for plain counters: the best-ranked name.
  std::optional<double> requests;
  int best = 0;
  for (const auto& [name, value] : counters) {
    int rank = RequestCounterRank(name);
    if (rank > best) {
      best = rank;
      requests = value;
    }
  }
  ServerTimeSnapshot snap;
  for (ServerStage stage : {ServerStage::kQueue, ServerStage::kCompute}) {
    bool any_histogram = false;
    for (const auto& [name, a] : families) {
      if (a.stage == stage && a.has_sum && a.has_count) any_histogram = true;
    }
    for (const auto& [name, a] : families) {
      if (a.stage != stage) continue;
      if (a.has_sum && a.has_count) {
        snap.families.push_back({name, stage, a.sum * a.micros_per_unit, a.count});
      } else if (!any_histogram && a.has_value && requests) {
        snap.families.push_back({name, stage, a.value * a.micros_per_unit, *requests});
      }
    }
  }
  return snap;
}

ServerSplit DiffServerTimes(const ServerTimeSnapshot& before, const ServerTimeSnapshot& after) {
  ServerSplit split;
  for (const DurationFamily& a : after.families) {
    const DurationFamily* b = nullptr;
    for (const DurationFamily& f : before.families) {
      if (f.name == a.name) b = &f;
    }
    if (b == nullptr) continue;
    double requests = a.count - b->count;
    double time = a.total_us - b->total_us;
    // A counter that went down means the server restarted: the difference means nothing.
    if (requests <= 0 || time < 0) continue;
    std::optional<double>& stage =
        a.stage == ServerStage::kQueue ? split.queue_us : split.compute_us;
    stage = stage.value_or(0) + time / requests;
    if (requests > split.requests) split.requests = requests;
  }
  return split;
}

}  // namespace quiver::loadgen
