// `quiver render -f FILE [--mode standard|knative]`: turns InferenceService / InferenceGraph YAML
// into plain Kubernetes objects that run Quiver's image.
#pragma once

#include <CLI/CLI.hpp>

namespace quiver {
void AddRenderCommand(CLI::App& app);
}  // namespace quiver
