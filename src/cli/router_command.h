// `quiver router --graph FILE`: serves one InferenceGraph as a standalone process (what a
// Kubernetes deployment of a graph runs).
#pragma once

#include <CLI/CLI.hpp>

namespace quiver {
void AddRouterCommand(CLI::App& app);
}  // namespace quiver
