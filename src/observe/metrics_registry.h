// A metrics registry: counter, gauge and histogram families with labels, written out in the
// Prometheus text format (prometheus_text.h).
//
// Built for the request path. A child (one set of label values of a family) is resolved once,
// under its family's lock, and kept by whoever updates it (a model keeps its children from load
// to unload). Updating a counter or a histogram is then a relaxed atomic add on a cell private
// to the CPU running it: cells are sharded per CPU, each shard on its own cache lines, and a
// scrape sums the shards. So I/O threads on different CPUs never write the same cache line, and
// no lock is taken per request. A scrape sees each cell at some moment; a histogram's sum may
// lag its buckets by an observation in flight (as with every Prometheus client).
//
// Thread-safe. Families live as long as the registry; a child lives as long as someone holds
// it, and leaves the exposition when its family's Remove is called.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace quiver::observe {

class PrometheusWriter;

namespace metrics_internal {

// One cache line of cells. Shards of a metric never share a line.
struct alignas(64) CellLine {
  std::atomic<uint64_t> cells[8] = {};
};
inline constexpr int kCellsPerLine = 8;

// Cells for `slots` values, repeated once per shard.
class ShardedCells {
 public:
  explicit ShardedCells(int slots);
  // Adds to slot `slot` of shard `shard` (normally the calling CPU's: CurrentShard()).
  void Add(int shard, int slot, uint64_t n) {
    Cell(shard, slot).fetch_add(n, std::memory_order_relaxed);
  }
  // Adds a double to a slot that holds the bits of a double (a histogram's sum).
  void AddDouble(int shard, int slot, double v);
  uint64_t Sum(int slot) const;
  double SumDouble(int slot) const;

  // Shards are a power of two, at most 16, at least the CPUs (configured) up to that cap.
  static int ShardCount();
  static int CurrentShard();

 private:
  // Any `shard` is taken modulo the shard count.
  std::atomic<uint64_t>& Cell(int shard, int slot) const {
    int i = (shard & shard_mask_) * lines_per_shard_ * kCellsPerLine + slot;
    return lines_[i / kCellsPerLine].cells[i % kCellsPerLine];
  }
  int shard_mask_;
  int lines_per_shard_;
  std::unique_ptr<CellLine[]> lines_;
};

}  // namespace metrics_internal

// The calling CPU's shard of every metric's cells. Any shard is correct (cells are atomics);
// the calling CPU's keeps cache lines private. A caller making several updates at once may take
// it once (about 5 ns) and pass it to each.
inline int CurrentShard() { return metrics_internal::ShardedCells::CurrentShard(); }

// A monotonically increasing integer (events, nanoseconds).
class Counter {
 public:
  Counter() : cells_(1) {}
  void Increment(uint64_t n = 1, int shard = CurrentShard()) { cells_.Add(shard, 0, n); }
  uint64_t Value() const { return cells_.Sum(0); }

 private:
  metrics_internal::ShardedCells cells_;
};

// A value that goes up and down. One atomic, not sharded: gauges are set rarely or, like a
// queue length, changed where the caller already takes a lock.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted in buckets by upper bound (inclusive), plus their sum.
class Histogram {
 public:
  // `bounds` ascending, finite; +Inf is implied.
  explicit Histogram(std::shared_ptr<const std::vector<double>> bounds);
  void Observe(double v, int shard = CurrentShard());

  struct Snapshot {
    std::vector<uint64_t> buckets;  // non-cumulative; one per bound, the last one for +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Collect() const;
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  // Slots: the sum (double bits), then the buckets and +Inf: an observation in one of the first
  // seven buckets touches one cache line.
  metrics_internal::ShardedCells cells_;
};

enum class MetricType { kCounter, kGauge, kHistogram };

// What every family shares: its name, help, label names and children by label values.
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(type),
        label_names_(std::move(label_names)) {}
  virtual ~MetricFamily() = default;

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Writes HELP, TYPE and every child's samples; nothing when the family has no child.
  virtual void Write(PrometheusWriter& out) const = 0;

 protected:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// A family of children of type T keyed by label values.
template <typename T>
class Family : public MetricFamily {
 public:
  using MetricFamily::MetricFamily;

  // The child for `label_values` (one per label name, in order), created at first use and
  // shared with later callers. Takes the family's lock: resolve once, keep the pointer.
  std::shared_ptr<T> WithLabels(const std::vector<std::string>& label_values);
  // Takes the child out of the exposition; holders may keep updating it, unseen.
  void Remove(const std::vector<std::string>& label_values);

 protected:
  virtual std::shared_ptr<T> Make() const = 0;
  // The children, in label-value order, for writing.
  std::vector<std::pair<std::vector<std::string>, std::shared_ptr<T>>> Children() const;

 private:
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::shared_ptr<T>> children_;  // guarded by mu_
};

class CounterFamily : public Family<Counter> {
 public:
  // The counted integers are shown divided by `divisor`, so that a counter can count
  // nanoseconds and show microseconds (Triton's *_duration_us, divisor 1000) without losing
  // precision.
  CounterFamily(std::string name, std::string help, std::vector<std::string> label_names,
                double divisor = 1)
      : Family(std::move(name), std::move(help), MetricType::kCounter, std::move(label_names)),
        divisor_(divisor) {}
  void Write(PrometheusWriter& out) const override;

 protected:
  std::shared_ptr<Counter> Make() const override { return std::make_shared<Counter>(); }

 private:
  const double divisor_;
};

class GaugeFamily : public Family<Gauge> {
 public:
  GaugeFamily(std::string name, std::string help, std::vector<std::string> label_names)
      : Family(std::move(name), std::move(help), MetricType::kGauge, std::move(label_names)) {}
  void Write(PrometheusWriter& out) const override;

 protected:
  std::shared_ptr<Gauge> Make() const override { return std::make_shared<Gauge>(); }
};

class HistogramFamily : public Family<Histogram> {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
      : Family(std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names)),
        bounds_(std::make_shared<const std::vector<double>>(std::move(bounds))) {}
  void Write(PrometheusWriter& out) const override;

 protected:
  std::shared_ptr<Histogram> Make() const override { return std::make_shared<Histogram>(bounds_); }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
};

// Prometheus client libraries' default buckets, in seconds (KServe's histograms use them).
const std::vector<double>& DefaultSecondsBuckets();

class MetricsRegistry {
 public:
  // Registration. Names must be valid Prometheus metric and label names and unique in the
  // registry (label `le` is reserved for histograms); breaking that is a programming error and
  // aborts. The family lives as long as the registry.
  CounterFamily* AddCounter(std::string name, std::string help,
                            std::vector<std::string> label_names = {}, double divisor = 1);
  GaugeFamily* AddGauge(std::string name, std::string help,
                        std::vector<std::string> label_names = {});
  HistogramFamily* AddHistogram(std::string name, std::string help,
                                std::vector<std::string> label_names, std::vector<double> bounds);

  // A collector writes families computed at scrape time (process figures, model states). It
  // runs on the scraping thread, after the registered families.
  void AddCollector(std::function<void(PrometheusWriter&)> collect);

  // The whole exposition, text format 0.0.4.
  std::string Scrape() const;

 private:
  void Register(std::unique_ptr<MetricFamily> family);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_;             // guarded by mu_
  std::vector<std::function<void(PrometheusWriter&)>> collectors_;  // guarded by mu_
};

}  // namespace quiver::observe
