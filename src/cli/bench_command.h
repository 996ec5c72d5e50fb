// `quiver bench`: a load generator for any Open Inference Protocol server (Quiver, KServe,
// Triton) in the style of perf_analyzer: closed-loop concurrency sweeps and open-loop request
// rates over REST JSON, REST binary or gRPC. Flags follow perf_analyzer's names.
#pragma once

#include <CLI/CLI.hpp>

namespace quiver {

// Adds the `bench` sub-command to `app`; running it calls loadgen::RunBench.
void AddBenchCommand(CLI::App& app);

}  // namespace quiver
