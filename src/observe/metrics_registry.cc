#include "observe/metrics_registry.h"

#include <sched.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "observe/prometheus_text.h"

namespace quiver::observe {
namespace metrics_internal {

int ShardedCells::ShardCount() {
  static const int shards = [] {
    int cpus = get_nprocs_conf();
    return static_cast<int>(std::bit_ceil(static_cast<unsigned>(std::clamp(cpus, 1, 16))));
  }();
  return shards;
}

int ShardedCells::CurrentShard() {
  // No system call: glibc reads the thread's rseq area or the vDSO (about 5 ns).
  int cpu = sched_getcpu();
  return cpu < 0 ? 0 : cpu & (ShardCount() - 1);
}

ShardedCells::ShardedCells(int slots)
    : shard_mask_(ShardCount() - 1),
      lines_per_shard_((slots + kCellsPerLine - 1) / kCellsPerLine),
      lines_(std::make_unique<CellLine[]>(static_cast<size_t>(lines_per_shard_) * ShardCount())) {}

void ShardedCells::AddDouble(int shard, int slot, double v) {
  std::atomic<uint64_t>& cell = Cell(shard, slot);
  uint64_t old = cell.load(std::memory_order_relaxed);
  while (!cell.compare_exchange_weak(old, std::bit_cast<uint64_t>(std::bit_cast<double>(old) + v),
                                     std::memory_order_relaxed)) {
  }
}

uint64_t ShardedCells::Sum(int slot) const {
  uint64_t sum = 0;
  for (int s = 0; s < ShardCount(); ++s) sum += Cell(s, slot).load(std::memory_order_relaxed);
  return sum;
}

double ShardedCells::SumDouble(int slot) const {
  double sum = 0;
  for (int s = 0; s < ShardCount(); ++s) {
    sum += std::bit_cast<double>(Cell(s, slot).load(std::memory_order_relaxed));
  }
  return sum;
}

}  // namespace metrics_internal

// ---- Histogram ----

Histogram::Histogram(std::shared_ptr<const std::vector<double>> bounds)
    : bounds_(std::move(bounds)), cells_(static_cast<int>(bounds_->size()) + 2) {}

void Histogram::Observe(double v, int shard) {
  const std::vector<double>& b = *bounds_;
  size_t bucket = std::isnan(v) ? b.size() : std::lower_bound(b.begin(), b.end(), v) - b.begin();
  cells_.AddDouble(shard, 0, v);
  cells_.Add(shard, static_cast<int>(bucket) + 1, 1);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot s;
  size_t n = bounds_->size() + 1;
  s.buckets.resize(n);
  for (size_t i = 0; i < n; ++i) {
    s.buckets[i] = cells_.Sum(static_cast<int>(i) + 1);
    s.count += s.buckets[i];
  }
  s.sum = cells_.SumDouble(0);
  return s;
}

// ---- Families ----

template <typename T>
std::shared_ptr<T> Family<T>::WithLabels(const std::vector<std::string>& label_values) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& child = children_[label_values];
  if (!child) child = Make();
  return child;
}

template <typename T>
void Family<T>::Remove(const std::vector<std::string>& label_values) {
  std::lock_guard<std::mutex> lock(mu_);
  children_.erase(label_values);
}

template <typename T>
std::vector<std::pair<std::vector<std::string>, std::shared_ptr<T>>> Family<T>::Children() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {children_.begin(), children_.end()};
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void CounterFamily::Write(PrometheusWriter& out) const {
  auto children = Children();
  if (children.empty()) return;
  out.Family(name_, help_, type_);
  for (const auto& [values, counter] : children) {
    if (divisor_ == 1) {
      out.Sample(name_, label_names_, values, counter->Value());
    } else {
      out.Sample(name_, label_names_, values, static_cast<double>(counter->Value()) / divisor_);
    }
  }
}

void GaugeFamily::Write(PrometheusWriter& out) const {
  auto children = Children();
  if (children.empty()) return;
  out.Family(name_, help_, type_);
  for (const auto& [values, gauge] : children) {
    out.Sample(name_, label_names_, values, gauge->Value());
  }
}

void HistogramFamily::Write(PrometheusWriter& out) const {
  auto children = Children();
  if (children.empty()) return;
  out.Family(name_, help_, type_);
  const std::string bucket = name_ + "_bucket";
  const std::vector<double>& bounds = *bounds_;
  std::vector<std::string> le;
  le.reserve(bounds.size());
  for (double b : bounds) le.push_back(FormatValue(b));
  for (const auto& [values, histogram] : children) {
    Histogram::Snapshot s = histogram->Collect();
    uint64_t cumulative = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
      cumulative += s.buckets[i];
      out.Sample(bucket, label_names_, values, cumulative, "le", le[i]);
    }
    out.Sample(bucket, label_names_, values, s.count, "le", "+Inf");
    out.Sample(name_ + "_sum", label_names_, values, s.sum);
    out.Sample(name_ + "_count", label_names_, values, s.count);
  }
}

const std::vector<double>& DefaultSecondsBuckets() {
  static const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                              0.5,   0.75, 1,     2.5,  5,     7.5, 10};
  return buckets;
}

// ---- Registry ----

namespace {

[[noreturn]] void Misuse(const std::string& what) {
  std::fprintf(stderr, "quiver metrics registry: %s\n", what.c_str());
  std::abort();
}

}  // namespace

void MetricsRegistry::Register(std::unique_ptr<MetricFamily> family) {
  if (!ValidMetricName(family->name())) Misuse("invalid metric name '" + family->name() + "'");
  for (const auto& label : family->label_names()) {
    if (!ValidLabelName(label) || (label == "le" && family->type() == MetricType::kHistogram)) {
      Misuse("invalid label name '" + label + "' in " + family->name());
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) {
    if (f->name() == family->name()) Misuse("metric '" + family->name() + "' registered twice");
  }
  families_.push_back(std::move(family));
}

CounterFamily* MetricsRegistry::AddCounter(std::string name, std::string help,
                                           std::vector<std::string> label_names, double divisor) {
  auto f = std::make_unique<CounterFamily>(std::move(name), std::move(help), std::move(label_names),
                                           divisor);
  CounterFamily* raw = f.get();
  Register(std::move(f));
  return raw;
}

GaugeFamily* MetricsRegistry::AddGauge(std::string name, std::string help,
                                       std::vector<std::string> label_names) {
  auto f = std::make_unique<GaugeFamily>(std::move(name), std::move(help), std::move(label_names));
  GaugeFamily* raw = f.get();
  Register(std::move(f));
  return raw;
}

HistogramFamily* MetricsRegistry::AddHistogram(std::string name, std::string help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      Misuse("histogram '" + name + "': bucket bounds must be finite and ascending");
    }
  }
  auto f = std::make_unique<HistogramFamily>(std::move(name), std::move(help),
                                             std::move(label_names), std::move(bounds));
  HistogramFamily* raw = f.get();
  Register(std::move(f));
  return raw;
}

void MetricsRegistry::AddCollector(std::function<void(PrometheusWriter&)> collect) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string MetricsRegistry::Scrape() const {
  std::string out;
  out.reserve(8192);
  PrometheusWriter writer(&out);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) f->Write(writer);
  for (const auto& collect : collectors_) collect(writer);
  return out;
}

}  // namespace quiver::observe
