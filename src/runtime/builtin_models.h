// The built-in test models, always available without plugins: `echo`, `add_sub` and `sleep`.
// They exist for protocol, batching and latency tests and for trying a server out.
#pragma once

#include "runtime/model.h"

namespace quiver {

// Handles formats "echo", "add_sub" and "sleep".
class BuiltinRuntime : public Runtime {
 public:
  std::string_view name() const override { return "builtin"; }
  StatusOr<std::unique_ptr<Model>> Load(const ModelConfig& config) override;

  static bool Handles(std::string_view format);
};

}  // namespace quiver
