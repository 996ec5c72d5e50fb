// The load levels of a sweep, parsed from perf_analyzer-style ranges: `START[:END[:STEP]]`, where
// STEP is an increment (`1:8:2` -> 1 3 5 7) or, written `xF`, a factor (`1:64:x2` -> 1 2 4 ... 64).
// Pure functions.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quiver::loadgen {

// Concurrency levels: whole numbers >= 1. END defaults to START, STEP to 1. The last level is
// END when the steps land on it, else the last one below it (as perf_analyzer). A fractional
// factor rounds down but always moves up by at least one (1:5:x1.5 -> 1 2 3 4).
StatusOr<std::vector<int64_t>> ParseConcurrencyRange(std::string_view spec);

// Request rates in requests per second: positive numbers, fractions allowed (`0.5:2:0.5`).
StatusOr<std::vector<double>> ParseRequestRateRange(std::string_view spec);

}  // namespace quiver::loadgen
