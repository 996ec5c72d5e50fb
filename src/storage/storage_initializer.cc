#include "storage/storage_initializer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "storage/storage_uri.h"

namespace quiver::storage {

namespace fs = std::filesystem;

namespace {

// SHA-256 of the empty payload: GET and HEAD bodies. S3 (and s3rver) require the header.
constexpr const char* kEmptyPayloadSha =
    "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct RelativeObject {
  S3Object object;
  std::string relative;  // path under the model directory
};

}  // namespace

struct StorageInitializer::Job {
  const Progress* progress = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  uint64_t bytes_done = 0;  // finished files
  uint64_t bytes_total = 0;
  uint64_t bytes_downloaded = 0;
  std::vector<RelativeObject> objects;  // S3: what the listing found

  uint64_t last_done = UINT64_MAX;  // what was reported last: curl calls back without news
  std::string last_file;

  bool cancelled() const { return cancel != nullptr && cancel->load(); }
  void Report(uint64_t done, const std::string& file) {
    if (progress == nullptr || !*progress || (done == last_done && file == last_file)) return;
    last_done = done;
    last_file = file;
    (*progress)(ProgressUpdate{done, bytes_total, file});
  }
};

StorageInitializer::StorageInitializer(StorageOptions options, S3Settings s3,
                                       std::unique_ptr<ModelCache> cache)
    : options_(std::move(options)), s3_(std::move(s3)), cache_(std::move(cache)) {}

StatusOr<std::unique_ptr<StorageInitializer>> StorageInitializer::Create(StorageOptions options) {
  QUIVER_ASSIGN_OR_RETURN(S3Settings s3, S3SettingsFromEnv(options.env));
  std::unique_ptr<ModelCache> cache;
  if (!options.cache_dir.empty()) {
    QUIVER_ASSIGN_OR_RETURN(cache, ModelCache::Open(options.cache_dir));
  }
  if (!options.sleeper) {
    options.sleeper = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }
  if (options.retry.max_attempts < 1) {
    return InvalidArgument("storage: retry.max_attempts must be at least 1, got " +
                           std::to_string(options.retry.max_attempts));
  }
  return std::unique_ptr<StorageInitializer>(
      new StorageInitializer(std::move(options), std::move(s3), std::move(cache)));
}

Status StorageInitializer::Retry(Job& job, const std::function<Status()>& attempt) {
  return RunWithRetries(options_.retry, options_.sleeper, job.cancel, [&] {
    Status s = attempt();
    if (!s.ok() && IsRetryable(s) && !job.cancelled()) spdlog::warn("storage: {}", s.message());
    return s;
  });
}

StatusOr<MaterializedModel> StorageInitializer::Materialize(const std::string& uri_text,
                                                            const Progress& progress,
                                                            const std::atomic<bool>* cancel) {
  QUIVER_ASSIGN_OR_RETURN(StorageUri uri, ParseStorageUri(uri_text));
  Job job;
  job.progress = &progress;
  job.cancel = cancel;
  if (uri.scheme == UriScheme::kLocal || uri.scheme == UriScheme::kFile ||
      uri.scheme == UriScheme::kPvc) {
    fs::path path;
    if (uri.scheme == UriScheme::kPvc) {
      if (options_.pvc_root.empty()) {
        return FailedPrecondition("storageUri '" + uri.uri +
                                  "': pvc:// needs the PVC root directory, which is not set");
      }
      path = PvcPath(uri, options_.pvc_root);
    } else {
      path = uri.path;
    }
    std::error_code ec;
    fs::path absolute = fs::absolute(path, ec);
    if (!ec) path = absolute;
    if (!fs::exists(path, ec)) {
      return NotFound("storageUri '" + uri.uri + "': " + path.string() + " does not exist");
    }
    return MaterializedModel{path.lexically_normal(), false, true, 0};
  }
  if (cache_ == nullptr) {
    return FailedPrecondition("storageUri '" + uri.uri +
                              "': downloading needs a cache directory, and none is set");
  }
  return MaterializeRemote(uri, job);
}

StatusOr<MaterializedModel> StorageInitializer::MaterializeRemote(const StorageUri& uri, Job& job) {
  // One download per URI at a time: a second caller waits here and then finds the entry.
  QUIVER_ASSIGN_OR_RETURN(ModelCache::UriLock lock, cache_->Lock(uri.uri));
  std::string validator;
  if (uri.scheme == UriScheme::kS3) {
    QUIVER_RETURN_IF_ERROR(ListS3(uri, job));
    for (const RelativeObject& o : job.objects) {
      validator +=
          o.object.key + "\t" + o.object.etag + "\t" + std::to_string(o.object.size) + "\n";
      job.bytes_total += o.object.size;
    }
  } else {
    QUIVER_ASSIGN_OR_RETURN(validator, HttpValidator(uri, job));
  }
  if (!validator.empty()) {
    if (std::optional<fs::path> hit = cache_->Find(uri.uri, validator)) {
      spdlog::info("storage: {} is unchanged; using the cached copy {}", uri.uri, hit->string());
      return MaterializedModel{*hit, true, false, 0};
    }
  }
  QUIVER_ASSIGN_OR_RETURN(fs::path staging, cache_->Stage(uri.uri));
  fs::path model_dir = staging / "model";
  Status status = uri.scheme == UriScheme::kS3 ? DownloadS3(uri, model_dir, job)
                                               : DownloadHttp(uri, model_dir, staging, job);
  if (!status.ok()) {
    cache_->Discard(staging);
    return status;
  }
  StatusOr<fs::path> committed = cache_->Commit(staging, uri.uri, validator);
  if (!committed.ok()) {
    cache_->Discard(staging);
    return committed.status();
  }
  spdlog::info("storage: downloaded {} ({} bytes) to {}", uri.uri, job.bytes_downloaded,
               committed->string());
  return MaterializedModel{*committed, false, false, job.bytes_downloaded};
}

// ---- http(s) ----

StatusOr<std::string> StorageInitializer::HttpValidator(const StorageUri& uri, Job& job) {
  HttpRequest head;
  head.head = true;
  head.url = uri.uri;
  head.cancel = job.cancel;
  HttpResponse response;
  Status status = Retry(job, [&]() -> Status {
    QUIVER_ASSIGN_OR_RETURN(response, PerformHttp(head, options_.transfer));
    if (response.status >= 200 && response.status < 300) return Status::Ok();
    // Servers that refuse HEAD (presigned URLs are signed for GET only): GET decides.
    if (response.status == 401 || response.status == 403 || response.status == 405 ||
        response.status == 501) {
      return Status::Ok();
    }
    return HttpFailure(response.status, "HEAD " + uri.uri, "");
  });
  QUIVER_RETURN_IF_ERROR(status);
  if (response.status < 200 || response.status >= 300) return std::string();
  if (response.content_length) job.bytes_total = *response.content_length;
  // Size alone is too weak (a retrained model of fixed-size tensors keeps its size): without an
  // ETag or a Last-Modified the source cannot be recognised as unchanged.
  if (response.etag.empty() && response.last_modified.empty()) return std::string();
  return "etag=" + response.etag + "\nlast-modified=" + response.last_modified +
         "\nlength=" + (response.content_length ? std::to_string(*response.content_length) : "");
}

Status StorageInitializer::DownloadHttp(const StorageUri& uri, const fs::path& model_dir,
                                        const fs::path& staging, Job& job) {
  bool archive = IsArchiveName(uri.file_name);
  fs::path target = archive ? staging / "download" : model_dir;
  std::error_code ec;
  fs::create_directories(target, ec);
  if (ec) return Internal("cannot create " + target.string() + ": " + ec.message());
  target /= uri.file_name;
  HttpRequest get;
  get.url = uri.uri;
  get.output_file = target;
  get.cancel = job.cancel;
  get.on_progress = [&](uint64_t now, uint64_t total) {
    if (job.bytes_total == 0) job.bytes_total = total;
    job.Report(now, uri.file_name);
  };
  HttpResponse response;
  QUIVER_RETURN_IF_ERROR(Retry(job, [&]() -> Status {
    QUIVER_ASSIGN_OR_RETURN(response, PerformHttp(get, options_.transfer));
    if (response.status >= 200 && response.status < 300) return Status::Ok();
    return HttpFailure(response.status, "GET " + uri.uri, "");
  }));
  job.bytes_downloaded = response.bytes_received;
  job.Report(response.bytes_received, uri.file_name);
  if (!archive) return Status::Ok();
  QUIVER_RETURN_IF_ERROR(ExtractArchive(
      target, model_dir, uri.uri, options_.extract_limits,
      [&](const std::string& entry) { job.Report(response.bytes_received, entry); }, job.cancel));
  fs::remove_all(staging / "download", ec);
  return Status::Ok();
}

// ---- s3 ----

HttpRequest StorageInitializer::S3Request(const std::string& url) const {
  HttpRequest request;
  request.url = url;
  request.follow_redirects = false;  // a redirect means a wrong region or endpoint: report it
  if (!s3_.anonymous()) {
    request.aws_sigv4 = SigV4Parameter(s3_);
    request.aws_key_id = s3_.access_key_id;
    request.aws_secret = s3_.secret_access_key;
    request.headers.push_back(kEmptyPayloadSha);
    if (!s3_.session_token.empty()) {
      request.headers.push_back("x-amz-security-token: " + s3_.session_token);
    }
  }
  return request;
}

Status StorageInitializer::S3Failure(const HttpResponse& response, const std::string& what,
                                     const StorageUri& uri) const {
  S3ErrorDocument error = ParseS3Error(response.body);
  std::string detail = error.code;
  if (!error.message.empty()) detail += (detail.empty() ? "" : ": ") + error.message;
  std::string prefix = "storageUri '" + uri.uri + "': " + what;
  if (error.code == "NoSuchBucket") {
    return NotFound("storageUri '" + uri.uri + "': bucket '" + uri.bucket +
                    "' does not exist (S3 NoSuchBucket, HTTP " + std::to_string(response.status) +
                    ")");
  }
  if (response.status >= 300 && response.status < 400) {
    return InvalidArgument(prefix + ": HTTP " + std::to_string(response.status) + " (" + detail +
                           "); check AWS_REGION and the endpoint");
  }
  return HttpFailure(response.status, prefix, detail);
}

Status StorageInitializer::ListS3(const StorageUri& uri, Job& job) {
  TransferOptions transfer = options_.transfer;
  transfer.verify_tls = s3_.verify_tls;
  transfer.ca_bundle = s3_.ca_bundle;
  std::string token;
  std::vector<RelativeObject> found;
  int pages = 0;
  do {
    HttpRequest request = S3Request(S3ListUrl(s3_, uri.bucket, uri.key, token));
    request.cancel = job.cancel;
    HttpResponse response;
    QUIVER_RETURN_IF_ERROR(Retry(job, [&]() -> Status {
      QUIVER_ASSIGN_OR_RETURN(response, PerformHttp(request, transfer));
      if (response.status == 200) return Status::Ok();
      return S3Failure(response, "listing objects", uri);
    }));
    StatusOr<S3ListPage> page = ParseListObjectsV2(response.body);
    if (!page.ok()) return page.status().WithPrefix("storageUri '" + uri.uri + "'");
    for (S3Object& object : page->objects) {
      const std::string& key = object.key;
      if (key.ends_with("/")) continue;  // a "folder" marker, not a file
      std::string relative;
      if (uri.key.empty() || uri.key.ends_with("/")) {
        relative = key.substr(uri.key.size());
      } else if (key == uri.key) {
        relative = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
      } else if (key.size() > uri.key.size() && key[uri.key.size()] == '/') {
        relative = key.substr(uri.key.size() + 1);
      } else {
        continue;  // prefix "models/iris" must not take "models/iris2/..."
      }
      if (!IsSafeRelativePath(relative)) {
        return InvalidArgument("storageUri '" + uri.uri + "': object key '" + key +
                               "' would be written outside the model directory; refused");
      }
      found.push_back(RelativeObject{std::move(object), relative});
    }
    token = page->truncated ? page->next_continuation_token : std::string();
    if (++pages > 100000) {
      return Internal("storageUri '" + uri.uri + "': the listing did not end after 100000 pages");
    }
  } while (!token.empty());
  if (found.empty()) {
    return NotFound("storageUri '" + uri.uri + "': no objects under prefix '" + uri.key +
                    "' in bucket '" + uri.bucket + "'");
  }
  std::sort(found.begin(), found.end(), [](const RelativeObject& a, const RelativeObject& b) {
    return a.object.key < b.object.key;
  });
  job.objects = std::move(found);
  return Status::Ok();
}

Status StorageInitializer::DownloadS3(const StorageUri& uri, const fs::path& model_dir, Job& job) {
  TransferOptions transfer = options_.transfer;
  transfer.verify_tls = s3_.verify_tls;
  transfer.ca_bundle = s3_.ca_bundle;
  for (const RelativeObject& item : job.objects) {
    if (job.cancelled()) return Unavailable("storageUri '" + uri.uri + "': cancelled");
    fs::path target = model_dir / item.relative;
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      return Internal("cannot create " + target.parent_path().string() + ": " + ec.message());
    }
    HttpRequest request = S3Request(S3ObjectUrl(s3_, uri.bucket, item.object.key));
    request.output_file = target;
    request.cancel = job.cancel;
    request.on_progress = [&](uint64_t now, uint64_t) {
      job.Report(job.bytes_done + now, item.relative);
    };
    HttpResponse response;
    QUIVER_RETURN_IF_ERROR(Retry(job, [&]() -> Status {
      QUIVER_ASSIGN_OR_RETURN(response, PerformHttp(request, transfer));
      if (response.status != 200) {
        return S3Failure(response, "GET object '" + item.object.key + "'", uri);
      }
      // The object changed between the listing and now, or the connection was cut short.
      if (response.bytes_received != item.object.size) {
        return Unavailable("storageUri '" + uri.uri + "': object '" + item.object.key + "' has " +
                           std::to_string(response.bytes_received) + " bytes, the listing said " +
                           std::to_string(item.object.size));
      }
      return Status::Ok();
    }));
    job.bytes_done += response.bytes_received;
    job.bytes_downloaded += response.bytes_received;
    job.Report(job.bytes_done, item.relative);
  }
  return Status::Ok();
}

}  // namespace quiver::storage
