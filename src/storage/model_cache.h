// ModelCache: the on-disk cache of downloaded models. An entry is named by SHA-256 of
// (URI, content validator), so an unchanged source is found again and a changed one gets a new
// entry; an entry appears by one rename of a complete staging directory, so a crash never
// leaves a half model that looks complete. Layout under the cache dir:
//   entries/<sha>/model/        the model directory handed to the server
//   entries/<sha>/source.json   the URI and validator it came from
//   staging/<uri-sha>.<n>/      downloads in progress (orphans removed under the URI's lock)
//   locks/<uri-sha>.lock        flock(2) per URI: one download at a time per URI, across
//                               threads and processes
// Thread-safe: every method may be called from any thread; URI locks serialise the writers.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"

namespace quiver::storage {

class ModelCache {
 public:
  // Creates the directories under `dir` if needed. kInternal naming the path when it cannot.
  static StatusOr<std::unique_ptr<ModelCache>> Open(const std::filesystem::path& dir);

  // Holds a URI's lock (released by the destructor). Movable.
  class UriLock {
   public:
    UriLock() = default;
    UriLock(UriLock&& other) noexcept;
    UriLock& operator=(UriLock&& other) noexcept;
    ~UriLock();

   private:
    friend class ModelCache;
    int fd_ = -1;
  };

  // Blocks until no other thread or process holds `uri`'s lock, then takes it, and removes
  // staging directories of that URI left by a crashed holder.
  StatusOr<UriLock> Lock(const std::string& uri);

  // The model directory of the entry for (uri, validator), when it is complete.
  std::optional<std::filesystem::path> Find(const std::string& uri,
                                            const std::string& validator) const;

  // A fresh, empty staging directory for `uri`, with a "model" subdirectory to fill. Call with
  // the URI's lock held.
  StatusOr<std::filesystem::path> Stage(const std::string& uri);

  // Publishes a filled staging directory as the entry for (uri, validator) and returns its model
  // directory. An existing entry with that name is replaced (only for sources without a
  // validator, which cannot be recognised as unchanged). Call with the URI's lock held.
  StatusOr<std::filesystem::path> Commit(const std::filesystem::path& staging,
                                         const std::string& uri, const std::string& validator);

  // Removes a staging directory after a failed download (best effort).
  void Discard(const std::filesystem::path& staging) const;

  const std::filesystem::path& dir() const { return dir_; }

  // The entry name for (uri, validator): SHA-256 hex of both, separated by a newline.
  static std::string EntryName(const std::string& uri, const std::string& validator);

 private:
  explicit ModelCache(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace quiver::storage
