// The server-side split of a request's time into queue and compute, read from a server's
// Prometheus metrics: a scrape before and after a window, and the differences. Pure functions.
//
// Which series count (written generically; see server_metrics_test.cc for Triton's and Quiver's
// names): samples whose `model` (or `model_name`) label is the model, whose name contains
// `queue` or `compute` and carries a time unit (`_seconds`, `_ms`, `_us`, `_ns`, optionally
// followed by `_total`, `_sum` or `_count`). A family with `_sum` and `_count` (a histogram or a
// summary, as Quiver's `nv_inference_queue_duration_seconds`) counts its own requests; a family
// that is a plain cumulative counter (as Triton's `nv_inference_queue_duration_us`) is divided by
// the model's request counter (a name containing `request_success`, else `requests_total` or
// `request_count`, never `pending` or `fail`). When a stage has both kinds (Triton with summaries
// turned on, Quiver's queue) only the `_sum`/`_count` families are used. Several families of one
// stage add up: Triton's (and Quiver's) compute is compute_input + compute_infer +
// compute_output.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/prometheus_text.h"

namespace quiver::loadgen {

enum class ServerStage { kQueue, kCompute };

// One family's cumulative values in one scrape.
struct DurationFamily {
  std::string name;  // without _sum/_count/_total
  ServerStage stage = ServerStage::kQueue;
  double total_us = 0;  // cumulative time
  double count = 0;     // cumulative requests it covers
};

// What one scrape says about one model. Empty when the server reports neither stage for it.
struct ServerTimeSnapshot {
  std::vector<DurationFamily> families;
  bool empty() const { return families.empty(); }
};

// Picks the model's queue and compute families out of a scrape. `version` (may be empty)
// filters on a `version` label when the samples have one.
ServerTimeSnapshot ExtractServerTimes(const std::vector<MetricSample>& samples,
                                      std::string_view model, std::string_view version);

// Average server time per request between two snapshots of the same server.
struct ServerSplit {
  std::optional<double> queue_us;  // unset: not reported, or no request counted in between
  std::optional<double> compute_us;
  double requests = 0;  // requests the server counted in between
};
ServerSplit DiffServerTimes(const ServerTimeSnapshot& before, const ServerTimeSnapshot& after);

}  // namespace quiver::loadgen
