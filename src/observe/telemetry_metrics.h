// The telemetry's own counters in the metrics registry: payload-log events delivered, failed
// and dropped, and spans exported, failed and dropped. Read at scrape time from the objects.
#pragma once

#include "observe/metrics_registry.h"
#include "observe/telemetry.h"

namespace quiver::observe {

// Adds a collector for what `telemetry` has switched on. `telemetry` must outlive the
// registry's scrapes.
void AddTelemetryMetrics(MetricsRegistry* registry, const Telemetry* telemetry);

}  // namespace quiver::observe
