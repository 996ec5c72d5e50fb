// `quiver serve`: the model server. Flags follow KServe's model servers (both `_` and `-`
// spellings) so ServingRuntime args work unchanged.
#pragma once

#include <CLI/CLI.hpp>

namespace quiver {

// Adds the `serve` sub-command to `app`; running it calls RunServe with the parsed flags.
void AddServeCommand(CLI::App& app);

}  // namespace quiver
