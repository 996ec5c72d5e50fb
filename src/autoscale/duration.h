// Go-style duration strings ("60s", "1m30s", "500ms") as Knative and Kubernetes users write
// them: parsed for the autoscaling.knative.dev/* annotations and `quiver up` flags, and
// formatted compactly for log lines. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace quiver::autoscale {

// Go's time.ParseDuration syntax: an optional sign, then one or more decimal numbers, each
// with an optional fraction and a unit (ns, us, µs, ms, s, m, h), e.g. "1h30m", "2.5s",
// "-1m"; "0" alone needs no unit. Errors are kInvalidArgument quoting the text.
StatusOr<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

// "0s", "500ms", "1.5s", "6s", "1m30s", "2h": the shortest readable form of `d`.
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace quiver::autoscale
