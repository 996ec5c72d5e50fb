// Where `quiver up` keeps its state and how the CLI verbs find the daemon: the state directory
// (--state-dir, $QUIVER_STATE_DIR, ~/.quiver) holds state.db, api.addr (the API's URL, written
// once it listens) and api.token (0600, when the API needs a token). Thread-safe (pure).
#pragma once

#include <string>

namespace quiver {

// `flag` when non-empty, else $QUIVER_STATE_DIR, else $HOME/.quiver.
std::string ResolveStateDir(const std::string& flag);

inline constexpr const char* kApiAddrFile = "api.addr";
inline constexpr const char* kApiTokenFile = "api.token";
inline constexpr const char* kStateDbFile = "state.db";

}  // namespace quiver
