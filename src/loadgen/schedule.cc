#include "loadgen/schedule.h"

#include <cmath>
#include <utility>

namespace quiver::loadgen {

RequestSchedule::RequestSchedule(Distribution distribution, double rate,
                                 std::function<double()> uniform, std::chrono::nanoseconds phase)
    : distribution_(distribution),
      interval_ns_(1e9 / rate),
      uniform_(std::move(uniform)),
      phase_ns_(static_cast<double>(phase.count())),
      poisson_ns_(phase_ns_) {}

std::chrono::nanoseconds RequestSchedule::Next() {
  double t;
  if (distribution_ == Distribution::kConstant) {
    t = phase_ns_ + static_cast<double>(sent_++) * interval_ns_;
  } else {
    // Inverse transform: -ln(1 - u) is exponential with mean 1 for u uniform in [0, 1).
    double u = uniform_();
    if (!(u >= 0 && u < 1)) u = 0;
    poisson_ns_ += -std::log1p(-u) * interval_ns_;
    t = poisson_ns_;
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(t));
}

}  // namespace quiver::loadgen
