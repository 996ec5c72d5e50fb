// StorageInitializer: turns a model's storageUri into a local directory, with KServe's
// storage-initializer semantics. Local paths, file:// and pvc:// are used in place (no copy);
// http(s):// files are downloaded (.tar.gz/.tgz/.tar/.zip unpacked); s3:// prefixes are
// downloaded object by object. Downloads land in a content-addressed cache (see model_cache.h):
// an unchanged source is validated with one HEAD or listing and not downloaded again.
// Thread-safe: Materialize may run concurrently; two calls for one URI download it once.
// libcurl and libarchive are loaded on first use, so creating one costs nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "storage/archive_extract.h"
#include "storage/http_transfer.h"
#include "storage/model_cache.h"
#include "storage/retry.h"
#include "storage/s3_protocol.h"
#include "storage/storage_uri.h"

namespace quiver::storage {

struct StorageOptions {
  std::filesystem::path cache_dir;              // required for remote URIs
  std::filesystem::path pvc_root = "/mnt/pvc";  // pvc://claim/path -> pvc_root/claim/path
  // The variables KServe's storage initializer reads (see s3_protocol.h), passed in rather than
  // read from the process so that tests and per-model secrets can differ.
  Environment env;
  TransferOptions transfer;  // timeouts; TLS settings for S3 come from env
  RetryPolicy retry;
  Sleeper sleeper;  // empty: std::this_thread::sleep_for
  ExtractLimits extract_limits;
};

// What Materialize reports as it goes: bytes so far over the whole model, the total when known
// (0 otherwise), and the file being fetched or unpacked. Called on the calling thread.
struct ProgressUpdate {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  std::string current_file;
};
using Progress = std::function<void(const ProgressUpdate&)>;

struct MaterializedModel {
  std::filesystem::path model_dir;  // what --model_dir points to
  bool from_cache = false;          // an earlier download was reused
  bool in_place = false;            // a local, file:// or pvc:// path used as it is
  uint64_t bytes_downloaded = 0;
};

class StorageInitializer {
 public:
  // kInvalidArgument for malformed S3 variables in options.env (naming the variable).
  static StatusOr<std::unique_ptr<StorageInitializer>> Create(StorageOptions options);

  // Makes `uri` available locally. `progress` may be empty; `cancel` (may be null) stops the
  // work soon after it is set, with kUnavailable "...cancelled". Errors name the URI: kNotFound
  // (missing path, HTTP 404, S3 NoSuchKey/NoSuchBucket/empty prefix), kFailedPrecondition
  // (403/401: access denied, with S3's error code), kUnavailable (host unreachable or 5xx after
  // the retries), kInvalidArgument (bad URI, corrupt archive, unsafe archive entry),
  // kUnimplemented (gs:// and other schemes).
  StatusOr<MaterializedModel> Materialize(const std::string& uri, const Progress& progress,
                                          const std::atomic<bool>* cancel);

 private:
  struct Job;
  explicit StorageInitializer(StorageOptions options, S3Settings s3,
                              std::unique_ptr<ModelCache> cache);
  StatusOr<MaterializedModel> MaterializeRemote(const StorageUri& uri, Job& job);
  StatusOr<std::string> HttpValidator(const StorageUri& uri, Job& job);
  Status DownloadHttp(const StorageUri& uri, const std::filesystem::path& model_dir,
                      const std::filesystem::path& staging, Job& job);
  Status ListS3(const StorageUri& uri, Job& job);
  Status DownloadS3(const StorageUri& uri, const std::filesystem::path& model_dir, Job& job);
  HttpRequest S3Request(const std::string& url) const;
  Status S3Failure(const HttpResponse& response, const std::string& what,
                   const StorageUri& uri) const;
  Status Retry(Job& job, const std::function<Status()>& attempt);

  StorageOptions options_;
  S3Settings s3_;
  std::unique_ptr<ModelCache> cache_;  // null when no cache_dir was given
};

}  // namespace quiver::storage
