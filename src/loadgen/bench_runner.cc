#include "loadgen/bench_runner.h"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <random>

#include "loadgen/grpc_load.h"
#include "loadgen/http_fetch.h"
#include "loadgen/http_load.h"
#include "loadgen/load_range.h"
#include "loadgen/model_inputs.h"
#include "loadgen/profiler.h"
#include "loadgen/prometheus_text.h"
#include "loadgen/request_encoding.h"
#include "loadgen/server_metrics.h"

namespace quiver::loadgen {
namespace {

constexpr auto kSetupTimeout = std::chrono::milliseconds(10000);
constexpr auto kScrapeTimeout = std::chrono::milliseconds(2000);

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// GET /metrics on the server's HTTP port, reduced to the model's queue and compute times.
class HttpMetricsSource : public ServerTimeSource {
 public:
  HttpMetricsSource(HttpEndpoint endpoint, std::string model, std::string version)
      : endpoint_(std::move(endpoint)), model_(std::move(model)), version_(std::move(version)) {}

  std::optional<ServerTimeSnapshot> Scrape() override {
    auto reply = HttpGet(endpoint_, "", kScrapeTimeout);
    if (!reply.ok() || reply->status != 200) return std::nullopt;
    auto samples = ParsePrometheusText(reply->body);
    if (!samples.ok()) return std::nullopt;
    ServerTimeSnapshot snap = ExtractServerTimes(*samples, model_, version_);
    if (snap.empty()) return std::nullopt;
    return snap;
  }

 private:
  HttpEndpoint endpoint_;  // base_path is the metrics path
  std::string model_;
  std::string version_;
};

class ProgressPrinter : public ProfileObserver {
 public:
  ProgressPrinter(std::ostream& err, bool tty, int max_trials, int64_t batch)
      : err_(err), tty_(tty), max_trials_(max_trials), batch_(batch) {}

  void OnProgress(const LoadLevel& level, int window, double elapsed_s, uint64_t completed,
                  uint64_t errors) override {
    if (!tty_) return;
    double rate = elapsed_s > 0 ? completed * static_cast<double>(batch_) / elapsed_s : 0;
    err_ << "\r\033[K[" << level.ToString() << "] window " << window << "/" << max_trials_ << "  "
         << Fixed(elapsed_s, 1) << " s  " << Fixed(rate, 1) << " infer/s  errors " << errors
         << std::flush;
  }

  void OnWindow(const LoadLevel& level, int window, const WindowStats& w, bool stable) override {
    std::string line = "[" + level.ToString() + "] window " + std::to_string(window) + ": " +
                       Fixed(w.throughput() * static_cast<double>(batch_), 1) + " infer/s, avg " +
                       Fixed(w.latency.avg_us, 0) + " µs, p99 " + Fixed(w.latency.p99_us, 0) +
                       " µs, errors " + std::to_string(w.errors) + (stable ? ", stable" : "");
    if (tty_) {
      err_ << "\r\033[K" << line << std::flush;
    } else {
      err_ << line << "\n" << std::flush;
    }
  }

  void EndLevel() {
    if (tty_) err_ << "\n" << std::flush;
  }

 private:
  std::ostream& err_;
  bool tty_;
  int max_trials_;
  int64_t batch_;
};

std::string DescribeInputs(const std::vector<TensorSpec>& specs) {
  std::string s;
  for (const auto& t : specs) {
    if (!s.empty()) s += ", ";
    s += t.name + " " + std::string(DataTypeName(t.datatype)) + " " + ShapeToString(t.shape);
  }
  return s;
}

}  // namespace

int RunBench(const BenchOptions& o, std::ostream& out, std::ostream& err, bool err_is_tty) {
  auto usage = [&](const std::string& m) {
    err << "quiver bench: " << m << "\n";
    return kBenchUsage;
  };
  auto fail = [&](const std::string& m) {
    err << "quiver bench: " << m << "\n";
    return kBenchFailed;
  };
  // A closed connection must be an error on the socket, never a signal that ends the run.
  signal(SIGPIPE, SIG_IGN);

  // ---- options ----
  if (o.model.empty()) return usage("-m MODEL is required");
  const bool grpc = o.protocol == "grpc";
  if (!grpc && o.protocol != "http") return usage("-i must be http or grpc");
  if (grpc && o.binary) return usage("--binary is for -i http (gRPC always sends raw bytes)");
  if (!o.concurrency_range.empty() && !o.request_rate_range.empty()) {
    return usage("give --concurrency-range or --request-rate-range, not both");
  }
  std::vector<LoadLevel> levels;
  if (!o.request_rate_range.empty()) {
    auto rates = ParseRequestRateRange(o.request_rate_range);
    if (!rates.ok()) return usage("--request-rate-range " + rates.status().message());
    for (double r : *rates) {
      levels.push_back({LoadLevel::Mode::kRequestRate, 0, r, o.distribution});
    }
  } else {
    auto cs = ParseConcurrencyRange(o.concurrency_range.empty() ? "1" : o.concurrency_range);
    if (!cs.ok()) return usage("--concurrency-range " + cs.status().message());
    for (int64_t c : *cs) levels.push_back({LoadLevel::Mode::kConcurrency, c, 0, o.distribution});
  }
  if (o.batch_size < 1) return usage("--batch-size must be at least 1");
  if (o.measurement_interval_ms < 10) return usage("--measurement-interval must be at least 10 ms");
  if (!(o.stability_percentage > 0)) return usage("--stability-percentage must be above 0");
  if (o.max_trials < 1) return usage("--max-trials must be at least 1");
  if (o.percentile && *o.percentile != 50 && *o.percentile != 90 && *o.percentile != 95 &&
      *o.percentile != 99) {
    return usage("--percentile must be 50, 90, 95 or 99");
  }
  if (o.threads < 1) return usage("--threads must be at least 1");
  if (o.max_connections < 1) return usage("--max-connections must be at least 1");
  std::vector<ShapeOverride> overrides;
  for (const auto& s : o.shapes) {
    auto parsed = ParseShapeOverride(s);
    if (!parsed.ok()) return usage(parsed.status().message());
    overrides.push_back(std::move(parsed).value());
  }

  // ---- the model ----
  ModelSpec spec;
  HttpEndpoint http_endpoint;
  std::string grpc_address;
  std::string url;
  if (grpc) {
    grpc_address = o.url.empty() ? "localhost:8081" : o.url;
    for (std::string_view prefix : {"grpc://", "http://"}) {
      if (grpc_address.starts_with(prefix)) grpc_address.erase(0, prefix.size());
    }
    url = grpc_address;
    auto fetched = FetchGrpcModelMetadata(grpc_address, o.model, o.model_version, kSetupTimeout);
    if (!fetched.ok()) {
      if (fetched.status().code() == StatusCode::kNotFound) {
        return fail("model '" + o.model + "'" +
                    (o.model_version.empty() ? "" : " version " + o.model_version) +
                    " not found at " + url + " (" + fetched.status().message() + ")");
      }
      if (fetched.status().code() == StatusCode::kUnavailable) {
        return fail("cannot reach the server at " + url + ": " + fetched.status().message());
      }
      return fail("cannot read the model's metadata from " + url + ": " +
                  fetched.status().message());
    }
    spec = std::move(fetched).value();
  } else {
    auto ep = ParseHttpUrl(o.url.empty() ? "localhost:8080" : o.url);
    if (!ep.ok()) return usage(ep.status().message());
    http_endpoint = *ep;
    url = http_endpoint.ToString();
    const std::string path = ModelPath(o.model, o.model_version);
    auto reply = HttpGet(http_endpoint, path, kSetupTimeout);
    if (!reply.ok()) return fail("cannot reach the server: " + reply.status().message());
    if (reply->status == 404) {
      return fail("model '" + o.model + "'" +
                  (o.model_version.empty() ? "" : " version " + o.model_version) +
                  " not found at " + url + " (GET " + path + " answered 404: " + reply->body + ")");
    }
    if (reply->status != 200) {
      return fail("GET " + url + path + " answered HTTP " + std::to_string(reply->status) + ": " +
                  reply->body);
    }
    auto parsed = ParseModelMetadataJson(reply->body);
    if (!parsed.ok()) {
      return fail("the metadata from GET " + url + path +
                  " is not usable: " + parsed.status().message());
    }
    spec = std::move(parsed).value();
  }
  const bool generated = o.input_data == "random" || o.input_data == "zero";
  if (spec.inputs.empty() && generated) {
    return fail("the metadata of model '" + o.model +
                "' lists no inputs, so there is nothing to generate; give --input-data with a "
                "v2 request body");
  }
  auto resolved = ResolveInputShapes(spec.inputs, o.batch_size, overrides);
  if (!resolved.ok()) return usage(resolved.status().message());

  // ---- the requests ----
  std::vector<std::vector<Tensor>> input_sets;
  if (generated) {
    std::mt19937_64 rng(o.seed);
    input_sets.push_back(GenerateInputs(
        *resolved, o.input_data == "random" ? InputValues::kRandom : InputValues::kZero, rng,
        static_cast<size_t>(std::max<int64_t>(o.string_length, 0))));
  } else {
    auto sets = ReadInputDataFile(o.input_data, *resolved);
    if (!sets.ok()) return usage(sets.status().message());
    input_sets = std::move(sets).value();
  }
  EngineOptions engine_options{.threads = o.threads,
                               .max_in_flight = o.max_connections,
                               .request_timeout = std::chrono::milliseconds(o.request_timeout_ms),
                               .seed = o.seed};
  std::shared_ptr<const std::vector<std::string>> http_requests;
  std::shared_ptr<const std::vector<inference::ModelInferRequest>> grpc_requests;
  size_t request_bytes = 0;
  if (grpc) {
    auto list = std::make_shared<std::vector<inference::ModelInferRequest>>();
    for (const auto& set : input_sets) {
      list->push_back(EncodeGrpcInferRequest(o.model, o.model_version, set));
      request_bytes = list->back().ByteSizeLong();
    }
    grpc_requests = std::move(list);
  } else {
    auto list = std::make_shared<std::vector<std::string>>();
    const std::string infer_path =
        http_endpoint.base_path + ModelPath(o.model, o.model_version) + "/infer";
    for (const auto& set : input_sets) {
      std::string body;
      std::optional<size_t> header_size;
      if (o.binary) {
        size_t n = 0;
        body = EncodeBinaryInferBody(set, &n);
        header_size = n;
      } else {
        auto json = EncodeJsonInferBody(set);
        if (!json.ok()) return usage(json.status().message());
        body = std::move(json).value();
      }
      request_bytes = body.size();
      list->push_back(HttpPostRequest(http_endpoint.HostHeader(), infer_path, body, header_size));
    }
    http_requests = std::move(list);
  }

  // ---- server-side metrics ----
  std::unique_ptr<ServerTimeSource> server;
  std::string metrics_url;
  std::string metrics_note;
  if (o.metrics_url != "none") {
    std::string where = o.metrics_url;
    const bool derived = where.empty();
    if (derived) {
      // The REST port; for gRPC, the default REST port when the gRPC address is the default.
      if (!grpc) {
        where = http_endpoint.ToString();
      } else if (o.url.empty()) {
        where = "localhost:8080";
      }
    }
    if (!where.empty()) {
      auto ep = ParseHttpUrl(where);
      if (!ep.ok()) return usage("--metrics-url: " + ep.status().message());
      // A derived address, or one without a path, gets the conventional /metrics.
      if (derived || ep->base_path.empty()) ep->base_path += "/metrics";
      auto probe = HttpGet(*ep, "", kScrapeTimeout);
      if (!probe.ok()) {
        metrics_note = probe.status().message();
      } else if (probe->status != 200) {
        metrics_note = "GET " + ep->ToString() + " answered HTTP " + std::to_string(probe->status);
      } else if (auto parsed = ParsePrometheusText(probe->body); !parsed.ok()) {
        metrics_note = ep->ToString() + " is not Prometheus text: " + parsed.status().message();
      } else {
        metrics_url = ep->ToString();
        server = std::make_unique<HttpMetricsSource>(*ep, o.model, o.model_version);
      }
    } else {
      metrics_note = "no HTTP address for the gRPC server (give --metrics-url)";
    }
  } else {
    metrics_note = "--metrics-url none";
  }

  err << "quiver bench: model " << o.model << " at " << url << " over "
      << (grpc       ? "gRPC"
          : o.binary ? "REST binary"
                     : "REST JSON")
      << "; inputs " << DescribeInputs(*resolved) << "; " << input_sets.size() << " request(s) of "
      << request_bytes << " bytes; server queue/compute split: "
      << (server ? "from " + metrics_url : "not available (" + metrics_note + ")") << "\n";

  // ---- the sweep ----
  BenchReport report;
  report.model = o.model;
  report.model_version = o.model_version;
  report.url = url;
  report.protocol = grpc ? "grpc" : "http";
  report.encoding = grpc ? "protobuf" : o.binary ? "binary" : "json";
  report.batch_size = o.batch_size;
  report.input_data = o.input_data;
  report.measurement_interval_ms = static_cast<double>(o.measurement_interval_ms);
  report.stability =
      StabilityRule{.percentage = o.stability_percentage, .windows = 3, .percentile = o.percentile};
  report.max_trials = o.max_trials;
  report.metrics_url = metrics_url;
  ProfileOptions profile{.interval = std::chrono::milliseconds(o.measurement_interval_ms),
                         .stability = report.stability,
                         .max_trials = o.max_trials,
                         .batch_size = o.batch_size};
  ProgressPrinter progress(err, err_is_tty, o.max_trials, o.batch_size);
  uint64_t total_errors = 0;
  for (const LoadLevel& level : levels) {
    std::unique_ptr<LoadEngine> engine =
        grpc ? CreateGrpcLoadEngine({grpc_address, grpc_requests, engine_options})
             : CreateHttpLoadEngine({http_endpoint, http_requests, engine_options});
    auto result = ProfileLevel(*engine, level, profile, server.get(), &progress, RealClock());
    progress.EndLevel();
    if (!result.ok()) return fail(level.ToString() + ": " + result.status().message());
    total_errors += result->errors;
    if (!result->stable && !result->all_failed) {
      err << "quiver bench: warning: " << level.ToString() << " was not stable within "
          << Fixed(o.stability_percentage, 0) << "% after " << result->windows
          << " windows; try a longer --measurement-interval\n";
    }
    if (level.mode == LoadLevel::Mode::kRequestRate &&
        result->delayed * 10 > result->requests + result->errors) {
      err << "quiver bench: warning: " << result->delayed << " requests at " << level.ToString()
          << " were sent more than 1 ms late (all " << o.max_connections
          << " connections busy, or the sender fell behind): the server does not keep up, or "
             "raise --max-connections / --threads\n";
    }
    const bool stop = result->all_failed;
    report.levels.push_back(std::move(result).value());
    if (stop) {
      err << "quiver bench: every request failed at " << level.ToString()
          << "; stopping. First error: " << report.levels.back().first_error << "\n";
      break;
    }
  }

  WriteTable(report, out);
  out.flush();
  int status = total_errors > 0 ? kBenchRequestErrors : kBenchOk;
  auto write_file = [&](const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) {
      err << "quiver bench: cannot write " << path << "\n";
      status = kBenchFailed;
    }
  };
  if (!o.csv_path.empty()) write_file(o.csv_path, ReportCsv(report));
  if (!o.json_path.empty()) write_file(o.json_path, ReportJson(report));
  if (total_errors > 0 && status == kBenchRequestErrors) {
    err << "quiver bench: " << total_errors << " request(s) failed (see the table)\n";
  }
  return status;
}

}  // namespace quiver::loadgen
