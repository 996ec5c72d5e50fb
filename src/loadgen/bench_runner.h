// `quiver bench` from parsed flags to results: reads the model's metadata, builds the requests,
// runs every load level through the profiler with a progress line, prints the table and writes
// --csv / --json. Flag parsing is the CLI's (src/cli/bench_command.cc).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "loadgen/schedule.h"

namespace quiver::loadgen {

struct BenchOptions {
  std::string model;
  std::string model_version;
  std::string url;                 // empty: localhost:8080 (http) or localhost:8081 (grpc)
  std::string protocol = "http";   // http | grpc
  bool binary = false;             // REST: the binary tensor data extension
  std::string concurrency_range;   // START:END:STEP or START:END:xFACTOR
  std::string request_rate_range;  // the same, in requests per second (open loop)
  Distribution distribution = Distribution::kConstant;
  int64_t batch_size = 1;
  std::string input_data = "random";  // random | zero | a JSON file
  std::vector<std::string> shapes;    // NAME:D1,D2
  int64_t string_length = 128;
  int64_t measurement_interval_ms = 5000;
  double stability_percentage = 10;
  int max_trials = 10;
  std::optional<double> percentile;  // latency used by the stability rule (default: average)
  int threads = 1;
  int max_connections = 256;  // open loop: most requests in flight
  int64_t request_timeout_ms = 30000;
  std::string metrics_url;  // empty: GET /metrics on the HTTP server; "none": off
  std::string csv_path;
  std::string json_path;
  uint64_t seed = 1;
};

// Exit status of a run.
inline constexpr int kBenchOk = 0;
inline constexpr int kBenchFailed = 1;         // could not start: unknown model, unreachable, ...
inline constexpr int kBenchUsage = 2;          // contradictory or malformed options
inline constexpr int kBenchRequestErrors = 3;  // results printed, but some requests failed

// Runs the benchmark. The table goes to `out`, the progress line and messages to `err`;
// `err_is_tty` chooses a live progress line (\r) over one line per window.
int RunBench(const BenchOptions& options, std::ostream& out, std::ostream& err, bool err_is_tty);

}  // namespace quiver::loadgen
