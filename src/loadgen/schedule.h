// When an open-loop load sends its requests: evenly spaced (constant) or as a Poisson process
// (exponential gaps), as offsets from the start of the run. The random source is injected, so a
// test passes its own values instead of doing statistics. Not thread-safe: one per sender.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace quiver::loadgen {

enum class Distribution { kConstant, kPoisson };

class RequestSchedule {
 public:
  // `rate` is in requests per second (> 0). `uniform` returns values in [0, 1); only Poisson
  // calls it, once per request. `phase` delays the first send (senders sharing a constant rate
  // interleave by starting at different phases).
  RequestSchedule(Distribution distribution, double rate, std::function<double()> uniform,
                  std::chrono::nanoseconds phase = std::chrono::nanoseconds(0));

  // The offset of the next send from the start; non-decreasing.
  std::chrono::nanoseconds Next();

 private:
  Distribution distribution_;
  double interval_ns_;
  std::function<double()> uniform_;
  double phase_ns_;
  uint64_t sent_ = 0;  // constant: k-th send at phase + k * interval (no drift from sums)
  double poisson_ns_;  // Poisson: running sum of gaps
};

}  // namespace quiver::loadgen
