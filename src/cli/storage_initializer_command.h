// `quiver storage-initializer SRC_URI DEST_DIR`: KServe's storage-initializer contract for an
// init container. Downloads (or copies) a storageUri into DEST_DIR (normally /mnt/models, an
// emptyDir) with the storage module, then exits: 0 on success, 1 with the error on stderr.
#pragma once

#include <CLI/CLI.hpp>

namespace quiver {
void AddStorageInitializerCommand(CLI::App& app);
}  // namespace quiver
