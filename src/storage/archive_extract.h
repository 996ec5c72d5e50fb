// Unpacking a downloaded model archive (.tar, .tar.gz/.tgz, .zip; detected by content, so a
// misnamed archive works too) into a directory, safely: no entry may land outside it. Rejected
// with an error naming the entry: absolute paths, '..' components, writing through a symlink,
// symlinks whose target resolves outside the directory, hard links to anything but an earlier
// regular file of the archive, device and FIFO entries, and archives past the size limits.
// Uses libarchive through archive_api.h (loaded on first use). Thread-safe (no shared state).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "common/status.h"

namespace quiver::storage {

struct ExtractLimits {
  uint64_t max_total_bytes = uint64_t{64} << 30;  // sum of unpacked file sizes
  uint64_t max_entries = 1'000'000;
};

// Unpacks `archive` into `dest` (created if missing; normally empty). On error `dest` may hold
// part of the archive: callers unpack into a staging directory they discard. A corrupt or
// unreadable archive is kInvalidArgument naming `display_name` and libarchive's reason.
// `on_file` (may be empty) is told each entry's path; `cancel` (may be null) stops between
// blocks with kUnavailable "cancelled".
Status ExtractArchive(const std::filesystem::path& archive, const std::filesystem::path& dest,
                      const std::string& display_name, const ExtractLimits& limits,
                      const std::function<void(const std::string&)>& on_file,
                      const std::atomic<bool>* cancel);

// Whether `path` (an archive entry's or an object key's relative path) is safe to create under a
// directory: non-empty, relative, no '..' components, no NUL. Leading "./" is fine.
bool IsSafeRelativePath(const std::string& path);

}  // namespace quiver::storage
