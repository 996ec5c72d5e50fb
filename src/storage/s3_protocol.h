// The S3 side of the storage initializer, without I/O: settings from KServe's environment
// variables, request URLs (path style for a custom endpoint, virtual-hosted style for AWS), the
// SigV4 parameter libcurl signs with, and parsers for ListObjectsV2 and error documents.
// Hand-written XML extraction because only these few flat elements are read and no XML library
// is among the project's dependencies. Pure functions on values; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace quiver::storage {

using Environment = std::map<std::string, std::string>;

struct S3Settings {
  std::string region = "us-east-1";
  // scheme://host[:port] without a trailing slash. Empty: AWS (https://s3.{region}.amazonaws.com).
  std::string endpoint;
  bool verify_tls = true;
  std::string ca_bundle;  // a PEM file; empty: the system's
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;

  // No credentials: requests go unsigned, as anonymous access to a public bucket.
  bool anonymous() const { return access_key_id.empty(); }
};

// Reads the variables KServe's storage initializer reads:
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (both or neither), AWS_SESSION_TOKEN,
//   AWS_REGION or AWS_DEFAULT_REGION (default us-east-1),
//   AWS_ENDPOINT_URL (a full URL) or S3_ENDPOINT (host[:port], or a URL), with
//   S3_USE_HTTPS (1/0, true/false; default 1) choosing the scheme for a bare S3_ENDPOINT,
//   S3_VERIFY_SSL (default 1) and AWS_CA_BUNDLE.
// kInvalidArgument naming the variable and the value for anything malformed.
StatusOr<S3Settings> S3SettingsFromEnv(const Environment& env);

// "aws:amz:{region}:s3", the value of CURLOPT_AWS_SIGV4.
std::string SigV4Parameter(const S3Settings& settings);

// AWS's URI encoding (RFC 3986 unreserved characters kept, the rest %XX with upper-case hex);
// '/' kept when `keep_slash` (object keys in paths). Used so that the request line is already
// in canonical form, which is what libcurl signs.
std::string S3UriEncode(std::string_view text, bool keep_slash);

// The URL of one object, and of one ListObjectsV2 page. The query parameters are in canonical
// (sorted) order.
std::string S3ObjectUrl(const S3Settings& settings, std::string_view bucket, std::string_view key);
std::string S3ListUrl(const S3Settings& settings, std::string_view bucket, std::string_view prefix,
                      std::string_view continuation_token);

struct S3Object {
  std::string key;
  std::string etag;
  uint64_t size = 0;
};

struct S3ListPage {
  std::vector<S3Object> objects;
  bool truncated = false;
  std::string next_continuation_token;
};

// Parses a ListBucketResult document. kInvalidArgument when it is not one (naming what is
// missing), so that a proxy's HTML page is not mistaken for an empty listing.
StatusOr<S3ListPage> ParseListObjectsV2(std::string_view xml);

struct S3ErrorDocument {
  std::string code;     // e.g. NoSuchBucket, AccessDenied, InvalidAccessKeyId
  std::string message;  // S3's sentence
};

// The Code and Message of an <Error> document; empty fields when the body is not one.
S3ErrorDocument ParseS3Error(std::string_view xml);

// The text of the first <name>...</name> in `xml`, entities decoded; empty when absent.
std::string XmlElementText(std::string_view xml, std::string_view name);

}  // namespace quiver::storage
