#include "loadgen/report.h"

#include <cstdio>

#include "protocol/json_writer.h"

namespace quiver::loadgen {
namespace {

bool IsRate(const BenchReport& r) {
  return !r.levels.empty() && r.levels[0].level.mode == LoadLevel::Mode::kRequestRate;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string LoadCell(const LevelResult& l) {
  if (l.level.mode == LoadLevel::Mode::kConcurrency) return std::to_string(l.level.concurrency);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", l.level.rate);
  return buf;
}

std::string Pad(const std::string& s, size_t width) {
  // Counts UTF-8 code points, so "µs" is two columns wide.
  size_t cols = 0;
  for (unsigned char c : s) cols += (c & 0xC0) != 0x80;
  return cols >= width ? s : std::string(width - cols, ' ') + s;
}

std::string EncodingLabel(const BenchReport& r) {
  if (r.protocol == "grpc") return "gRPC";
  return r.encoding == "binary" ? "REST binary" : "REST JSON";
}

}  // namespace

void WriteTable(const BenchReport& r, std::ostream& out) {
  const bool rate = IsRate(r);
  out << "Model " << r.model << (r.model_version.empty() ? "" : " version " + r.model_version)
      << " at " << r.url << " (" << EncodingLabel(r) << "), batch " << r.batch_size << ", "
      << Fixed(r.measurement_interval_ms, 0) << " ms windows, stable within "
      << Fixed(r.stability.percentage, 0) << "% over " << r.stability.windows << " windows\n";
  const std::vector<std::string> header = {rate ? "Rate/s" : "Concurrency",
                                           "Infer/s",
                                           "p50 µs",
                                           "p90 µs",
                                           "p95 µs",
                                           "p99 µs",
                                           "Errors",
                                           "Server queue µs",
                                           "Server compute µs"};
  const std::vector<size_t> width = {11, 12, 9, 9, 9, 9, 8, 16, 18};
  for (size_t i = 0; i < header.size(); ++i) out << Pad(header[i], width[i]);
  out << "\n";
  bool any_unstable = false;
  for (const LevelResult& l : r.levels) {
    std::string load = LoadCell(l);
    if (!l.stable) {
      load += "*";
      any_unstable = true;
    }
    auto server = [&](const std::optional<double>& v) {
      return v ? Fixed(*v, 1) : std::string("not available");
    };
    const std::vector<std::string> cells = {load,
                                            Fixed(l.infer_per_sec, 1),
                                            Fixed(l.latency.p50_us, 0),
                                            Fixed(l.latency.p90_us, 0),
                                            Fixed(l.latency.p95_us, 0),
                                            Fixed(l.latency.p99_us, 0),
                                            std::to_string(l.errors),
                                            server(l.server_queue_us),
                                            server(l.server_compute_us)};
    for (size_t i = 0; i < cells.size(); ++i) out << Pad(cells[i], width[i]);
    out << "\n";
  }
  if (any_unstable) {
    out << "* not stable: the last " << r.stability.windows << " windows (of at most "
        << r.max_trials << ") were not within " << Fixed(r.stability.percentage, 0)
        << "% of each other; they are reported anyway\n";
  }
  for (const LevelResult& l : r.levels) {
    if (l.errors == 0) continue;
    out << LoadCell(l) << (rate ? "/s" : "") << ": " << l.errors << " errors (";
    bool first = true;
    for (const auto& [kind, n] : l.error_kinds) {
      out << (first ? "" : ", ") << kind << ": " << n;
      first = false;
    }
    out << "); first: " << l.first_error << "\n";
  }
}

std::string ReportCsv(const BenchReport& r) {
  std::string csv = IsRate(r) ? "Request Rate" : "Concurrency";
  csv +=
      ",Inferences/Second,Requests/Second,Avg latency,p50 latency,p90 latency,p95 latency,"
      "p99 latency,Errors,Server Queue,Server Compute,Stable\n";
  auto opt = [](const std::optional<double>& v) { return v ? Fixed(*v, 1) : std::string(); };
  for (const LevelResult& l : r.levels) {
    csv += LoadCell(l) + "," + Fixed(l.infer_per_sec, 2) + "," + Fixed(l.requests_per_sec, 2) +
           "," + Fixed(l.latency.avg_us, 1) + "," + Fixed(l.latency.p50_us, 1) + "," +
           Fixed(l.latency.p90_us, 1) + "," + Fixed(l.latency.p95_us, 1) + "," +
           Fixed(l.latency.p99_us, 1) + "," + std::to_string(l.errors) + "," +
           opt(l.server_queue_us) + "," + opt(l.server_compute_us) + "," +
           (l.stable ? "true" : "false") + "\n";
  }
  return csv;
}

std::string ReportJson(const BenchReport& r) {
  std::string out;
  JsonWriter w(&out);
  auto key = [&](const char* k) {
    w.Char(',');
    w.Key(k);
  };
  auto opt = [&](const std::optional<double>& v) {
    if (v) {
      w.Double(*v);
    } else {
      w.Null();
    }
  };
  w.Char('{');
  w.Key("model");
  w.String(r.model);
  key("model_version");
  w.String(r.model_version);
  key("url");
  w.String(r.url);
  key("protocol");
  w.String(r.protocol);
  key("encoding");
  w.String(r.encoding);
  key("batch_size");
  w.Int(r.batch_size);
  key("input_data");
  w.String(r.input_data);
  key("mode");
  w.String(IsRate(r) ? "request_rate" : "concurrency");
  key("measurement_interval_ms");
  w.Double(r.measurement_interval_ms);
  key("stability_percentage");
  w.Double(r.stability.percentage);
  key("stability_windows");
  w.Uint(r.stability.windows);
  key("max_trials");
  w.Int(r.max_trials);
  key("server_metrics");
  if (r.metrics_url.empty()) {
    w.Null();
  } else {
    w.String(r.metrics_url);
  }
  key("results");
  w.Char('[');
  for (size_t i = 0; i < r.levels.size(); ++i) {
    const LevelResult& l = r.levels[i];
    if (i > 0) w.Char(',');
    w.Char('{');
    if (l.level.mode == LoadLevel::Mode::kConcurrency) {
      w.Key("concurrency");
      w.Int(l.level.concurrency);
    } else {
      w.Key("request_rate");
      w.Double(l.level.rate);
      key("distribution");
      w.String(l.level.distribution == Distribution::kPoisson ? "poisson" : "constant");
    }
    key("stable");
    w.Bool(l.stable);
    key("windows");
    w.Int(l.windows);
    key("seconds");
    w.Double(l.seconds);
    key("requests");
    w.Uint(l.requests);
    key("errors");
    w.Uint(l.errors);
    key("error_kinds");
    w.Char('{');
    bool first = true;
    for (const auto& [kind, n] : l.error_kinds) {
      if (!first) w.Char(',');
      first = false;
      w.Key(kind);
      w.Uint(n);
    }
    w.Char('}');
    key("first_error");
    if (l.first_error.empty()) {
      w.Null();
    } else {
      w.String(l.first_error);
    }
    key("delayed_requests");
    w.Uint(l.delayed);
    key("throughput_infer_per_sec");
    w.Double(l.infer_per_sec);
    key("throughput_requests_per_sec");
    w.Double(l.requests_per_sec);
    key("latency_us");
    w.Char('{');
    w.Key("avg");
    w.Double(l.latency.avg_us);
    key("stddev");
    w.Double(l.latency.stddev_us);
    key("min");
    w.Double(l.latency.min_us);
    key("max");
    w.Double(l.latency.max_us);
    key("p50");
    w.Double(l.latency.p50_us);
    key("p90");
    w.Double(l.latency.p90_us);
    key("p95");
    w.Double(l.latency.p95_us);
    key("p99");
    w.Double(l.latency.p99_us);
    w.Char('}');
    key("server_queue_us");
    opt(l.server_queue_us);
    key("server_compute_us");
    opt(l.server_compute_us);
    w.Char('}');
  }
  w.Char(']');
  w.Char('}');
  out.push_back('\n');
  return out;
}

}  // namespace quiver::loadgen
