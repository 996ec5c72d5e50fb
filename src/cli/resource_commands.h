// The kubectl-like verbs that talk to `quiver up`'s API: apply, get, describe, delete, logs.
// The server comes from --server, $QUIVER_SERVER or <state-dir>/api.addr; the token from
// --token, $QUIVER_TOKEN or <state-dir>/api.token. Errors from the API print as kubectl does
// ("Error from server (NotFound): ...") and exit 1.
#pragma once

#include <CLI/CLI.hpp>

namespace quiver {

void AddResourceCommands(CLI::App& app);

}  // namespace quiver
