// The results of a benchmark and their three forms: the table printed at the end, --csv (one row
// per load level, perf_analyzer's column names where they exist) and --json. Pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "loadgen/load_engine.h"
#include "loadgen/measurement.h"

namespace quiver::loadgen {

// One load level, measured over its last (stable) windows merged.
struct LevelResult {
  LoadLevel level;
  bool stable = false;
  int windows = 0;        // windows run at this level
  double seconds = 0;     // length of the merged windows
  uint64_t requests = 0;  // successful requests in the merged windows
  uint64_t errors = 0;
  uint64_t delayed = 0;
  ErrorCounts error_kinds;
  std::string first_error;
  LatencySummary latency;
  double requests_per_sec = 0;
  double infer_per_sec = 0;  // requests × batch size
  std::optional<double> server_queue_us;
  std::optional<double> server_compute_us;
  bool all_failed = false;  // a window completed no request: the sweep stopped here
};

struct BenchReport {
  std::string model;
  std::string model_version;
  std::string url;
  std::string protocol;  // "http" or "grpc"
  std::string encoding;  // "json", "binary" or "protobuf"
  int64_t batch_size = 1;
  std::string input_data;  // random, zero or a file name
  double measurement_interval_ms = 0;
  StabilityRule stability;
  int max_trials = 0;
  std::string metrics_url;  // where the server split came from; empty when not available
  std::vector<LevelResult> levels;
};

// The final table: load, throughput, latency percentiles, errors and the server split.
void WriteTable(const BenchReport& report, std::ostream& out);
std::string ReportCsv(const BenchReport& report);
std::string ReportJson(const BenchReport& report);

}  // namespace quiver::loadgen
