// StorageUri: a model's storageUri parsed into the parts the storage initializer needs, with
// KServe's schemes: local paths and file://, http(s)://, s3://bucket/prefix and pvc://claim/path.
// Schemes KServe has but Quiver does not implement (gs, hdfs, hf, oci, ...) are kUnimplemented
// naming the scheme. Pure functions on values; thread-safe.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace quiver::storage {

enum class UriScheme { kLocal, kFile, kHttp, kHttps, kS3, kPvc };

struct StorageUri {
  UriScheme scheme = UriScheme::kLocal;
  std::string uri;        // as given
  std::string path;       // kLocal, kFile: the file-system path (file:// percent-decoded)
  std::string bucket;     // kS3: the bucket; kPvc: the claim name
  std::string key;        // kS3: the object key or prefix; kPvc: the path inside the claim
  std::string host;       // kHttp(s): host[:port], for error messages
  std::string file_name;  // kHttp(s): the last path segment, decoded: the downloaded file's name
};

// Parses `uri`. Errors: kInvalidArgument for an empty or malformed URI (naming what is wrong),
// kUnimplemented for a scheme that is recognised but not supported, or unknown.
StatusOr<StorageUri> ParseStorageUri(std::string_view uri);

// pvc://{claim}/{path} -> {pvc_root}/{claim}/{path} (the claim's volume mounted under pvc_root).
std::filesystem::path PvcPath(const StorageUri& uri, const std::filesystem::path& pvc_root);

// Whether a file name asks to be unpacked: .tar.gz, .tgz, .tar or .zip (case-insensitive).
bool IsArchiveName(std::string_view file_name);

// %XX decoding; kInvalidArgument naming `what` when a % is not followed by two hex digits.
StatusOr<std::string> PercentDecode(std::string_view text, std::string_view what);

}  // namespace quiver::storage
