// `quiver up`: the local control plane daemon (durable state + Kubernetes-shaped REST API; the
// reconciler, supervisor and gateway join it in control_plane.h). It prints
// "quiver control plane API listening on http://HOST:PORT" on stdout once it serves and writes
// that URL to <state-dir>/api.addr for the CLI verbs. SIGTERM/SIGINT stop it cleanly.
#pragma once

#include <CLI/CLI.hpp>

namespace quiver {

// The API's port when --api-port is not given (8080/8081 are the gateway's and the model
// servers' ports, 9090 is Prometheus's).
inline constexpr int kDefaultApiPort = 7070;

void AddUpCommand(CLI::App& app);

}  // namespace quiver
