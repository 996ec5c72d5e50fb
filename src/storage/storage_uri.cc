#include "storage/storage_uri.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace quiver::storage {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A relative path inside a bucket, claim or archive must not climb out of it.
bool HasDotDot(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

StatusOr<std::string> PercentDecode(std::string_view text, std::string_view what) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      return InvalidArgument(std::string(what) + ": '%' at offset " + std::to_string(i) +
                             " is not followed by two hex digits");
    }
    int hi = HexValue(text[i + 1]), lo = HexValue(text[i + 2]);
    if (hi < 0 || lo < 0) {
      return InvalidArgument(std::string(what) + ": '%" + std::string(text.substr(i + 1, 2)) +
                             "' is not a valid percent escape");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

bool IsArchiveName(std::string_view file_name) {
  std::string name = Lower(file_name);
  for (std::string_view suffix : {".tar.gz", ".tgz", ".tar", ".zip"}) {
    if (name.size() > suffix.size() && name.ends_with(suffix)) return true;
  }
  return false;
}

StatusOr<StorageUri> ParseStorageUri(std::string_view text) {
  StorageUri out;
  out.uri = std::string(text);
  if (text.empty()) return InvalidArgument("storageUri is empty");
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) {
    // KServe treats anything without a scheme as a local path.
    out.scheme = UriScheme::kLocal;
    out.path = std::string(text);
    return out;
  }
  std::string scheme = Lower(text.substr(0, sep));
  std::string_view rest = text.substr(sep + 3);
  if (scheme == "file") {
    out.scheme = UriScheme::kFile;
    // file:///abs/path (empty authority) or file://localhost/abs/path.
    if (rest.starts_with("localhost/")) rest.remove_prefix(std::string_view("localhost").size());
    if (!rest.starts_with("/")) {
      return InvalidArgument("storageUri '" + out.uri +
                             "': a file:// URI needs an absolute path (file:///path/to/model)");
    }
    QUIVER_ASSIGN_OR_RETURN(out.path, PercentDecode(rest, "storageUri '" + out.uri + "'"));
    return out;
  }
  if (scheme == "http" || scheme == "https") {
    out.scheme = scheme == "http" ? UriScheme::kHttp : UriScheme::kHttps;
    size_t path_start = rest.find_first_of("/?#");
    out.host = std::string(rest.substr(0, path_start));
    if (out.host.empty()) return InvalidArgument("storageUri '" + out.uri + "' has no host");
    std::string_view path =
        path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    path = path.substr(0, path.find_first_of("?#"));
    std::string_view last =
        path.substr(path.rfind('/') == std::string_view::npos ? 0 : path.rfind('/') + 1);
    QUIVER_ASSIGN_OR_RETURN(out.file_name, PercentDecode(last, "storageUri '" + out.uri + "'"));
    if (out.file_name.empty() || out.file_name == "." || out.file_name == ".." ||
        out.file_name.find('/') != std::string::npos ||
        out.file_name.find('\0') != std::string::npos) {
      return InvalidArgument("storageUri '" + out.uri +
                             "' names no file: an http(s) URI must end in a file name, e.g. "
                             "https://host/models/model.tar.gz");
    }
    return out;
  }
  if (scheme == "s3" || scheme == "pvc") {
    out.scheme = scheme == "s3" ? UriScheme::kS3 : UriScheme::kPvc;
    size_t slash = rest.find('/');
    out.bucket = std::string(rest.substr(0, slash));
    out.key = slash == std::string_view::npos ? std::string() : std::string(rest.substr(slash + 1));
    const char* what = scheme == "s3" ? "bucket" : "claim name";
    if (out.bucket.empty()) {
      return InvalidArgument("storageUri '" + out.uri + "' has no " + what + " (expected " +
                             scheme + "://" + (scheme == "s3" ? "bucket/prefix" : "claim/path") +
                             ")");
    }
    if (scheme == "pvc") {
      // A claim is a Kubernetes name; the path stays inside it.
      if (out.bucket == "." || out.bucket == ".." || HasDotDot(out.key)) {
        return InvalidArgument("storageUri '" + out.uri +
                               "': '..' is not allowed in a pvc:// path");
      }
    }
    return out;
  }
  static constexpr std::array<std::string_view, 9> kKnown = {
      "gs", "hdfs", "webhdfs", "hf", "oci", "modelscope", "azure", "abfs", "wasbs"};
  bool known = std::find(kKnown.begin(), kKnown.end(), scheme) != kKnown.end();
  return Unimplemented("storageUri '" + out.uri + "': scheme '" + scheme + "://' is " +
                       (known ? "not supported by Quiver" : "unknown") +
                       "; supported: local paths, file://, http://, https://, s3://, pvc://");
}

std::filesystem::path PvcPath(const StorageUri& uri, const std::filesystem::path& pvc_root) {
  std::filesystem::path out = pvc_root / uri.bucket;
  if (!uri.key.empty()) out /= uri.key;
  return out;
}

}  // namespace quiver::storage
