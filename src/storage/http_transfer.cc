#include "storage/http_transfer.h"

#include <strings.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/curl_api.h"

namespace quiver::storage {
namespace {

constexpr size_t kMaxMemoryBody = 64u << 20;  // listings; error bodies are cut at 64 KiB
constexpr size_t kMaxErrorBody = 64u << 10;

struct TransferState {
  const CurlApi* api = nullptr;
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  FILE* file = nullptr;
  bool decided = false;  // whether the body goes to the file (known at the first byte)
  bool to_file = false;
  bool write_failed = false;
};

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '\r' || s.back() == '\n' || s.back() == ' '))
    s.remove_suffix(1);
  return std::string(s);
}

size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* state = static_cast<TransferState*>(user);
  std::string_view line(data, size * nmemb);
  HttpResponse& r = *state->response;
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or 100 Continue): forget the previous one's headers.
    r.etag.clear();
    r.last_modified.clear();
    r.content_length.reset();
    return line.size();
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return line.size();
  std::string name(line.substr(0, colon));
  std::string value = Trim(line.substr(colon + 1));
  if (strcasecmp(name.c_str(), "ETag") == 0) {
    r.etag = value;
  } else if (strcasecmp(name.c_str(), "Last-Modified") == 0) {
    r.last_modified = value;
  } else if (strcasecmp(name.c_str(), "Content-Length") == 0) {
    uint64_t n = 0;
    auto res = std::from_chars(value.data(), value.data() + value.size(), n);
    if (res.ec == std::errc()) r.content_length = n;
  }
  return line.size();
}

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  auto* state = static_cast<TransferState*>(user);
  size_t n = size * nmemb;
  if (!state->decided) {
    state->decided = true;
    long code = 0;
    state->api->easy_getinfo(state->curl, CURLINFO_RESPONSE_CODE, &code);
    state->to_file = state->file != nullptr && code >= 200 && code < 300;
  }
  state->response->bytes_received += n;
  if (state->to_file) {
    if (std::fwrite(data, 1, n, state->file) != n) {
      state->write_failed = true;
      return 0;  // aborts the transfer
    }
    return n;
  }
  std::string& body = state->response->body;
  size_t cap = state->file != nullptr ? kMaxErrorBody : kMaxMemoryBody;
  if (body.size() < cap) body.append(data, std::min(n, cap - body.size()));
  return n;
}

int OnProgress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* state = static_cast<TransferState*>(user);
  const HttpRequest& request = *state->request;
  if (request.cancel != nullptr && request.cancel->load()) return 1;
  if (request.on_progress && state->to_file && dlnow > 0) {
    request.on_progress(static_cast<uint64_t>(dlnow), static_cast<uint64_t>(dltotal));
  }
  return 0;
}

struct CurlDeleter {
  const CurlApi* api;
  void operator()(CURL* c) const { api->easy_cleanup(c); }
};
struct SlistDeleter {
  const CurlApi* api;
  void operator()(curl_slist* l) const { api->slist_free_all(l); }
};
struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

}  // namespace

std::string UrlHost(const std::string& url) {
  size_t sep = url.find("://");
  size_t start = sep == std::string::npos ? 0 : sep + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string host = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  size_t at = host.rfind('@');  // never echo credentials from a URL
  return at == std::string::npos ? host : host.substr(at + 1);
}

StatusOr<HttpResponse> PerformHttp(const HttpRequest& request, const TransferOptions& options) {
  QUIVER_ASSIGN_OR_RETURN(const CurlApi* api, LoadCurl());
  std::unique_ptr<CURL, CurlDeleter> curl(api->easy_init(), CurlDeleter{api});
  if (!curl) return Internal("libcurl: curl_easy_init failed");
  CURL* c = curl.get();
  const std::string what = std::string(request.head ? "HEAD " : "GET ") + request.url;

  std::unique_ptr<FILE, FileCloser> file;
  if (!request.output_file.empty()) {
    file.reset(std::fopen(request.output_file.c_str(), "wb"));
    if (!file) {
      return Internal("cannot create " + request.output_file.string() + ": " +
                      std::strerror(errno));
    }
  }
  HttpResponse response;
  TransferState state;
  state.api = api;
  state.curl = c;
  state.request = &request;
  state.response = &response;
  state.file = file.get();

  std::unique_ptr<curl_slist, SlistDeleter> headers(nullptr, SlistDeleter{api});
  for (const std::string& h : request.headers) {
    headers.reset(api->slist_append(headers.release(), h.c_str()));
  }
  // Option values' types matter (variadic): long, pointers, curl_off_t, as curl.h says.
  api->easy_setopt(c, CURLOPT_URL, request.url.c_str());
  api->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  api->easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  api->easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  api->easy_setopt(c, CURLOPT_USERAGENT, options.user_agent.c_str());
  api->easy_setopt(c, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  api->easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  api->easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // models may be served gzip-encoded
  if (request.head) api->easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (headers) api->easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (!request.aws_sigv4.empty()) {
    api->easy_setopt(c, CURLOPT_AWS_SIGV4, request.aws_sigv4.c_str());
    api->easy_setopt(c, CURLOPT_USERNAME, request.aws_key_id.c_str());
    api->easy_setopt(c, CURLOPT_PASSWORD, request.aws_secret.c_str());
  }
  api->easy_setopt(c, CURLOPT_SSL_VERIFYPEER, options.verify_tls ? 1L : 0L);
  api->easy_setopt(c, CURLOPT_SSL_VERIFYHOST, options.verify_tls ? 2L : 0L);
  if (!options.ca_bundle.empty()) api->easy_setopt(c, CURLOPT_CAINFO, options.ca_bundle.c_str());
  api->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options.connect_timeout.count()));
  if (request.output_file.empty()) {
    api->easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options.request_timeout.count()));
  }
  // Below one byte per second for stall_timeout: the download is stuck.
  api->easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  api->easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                   std::max(1L, static_cast<long>(options.stall_timeout.count() / 1000)));
  curl_write_callback header_cb = &OnHeader;
  api->easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  api->easy_setopt(c, CURLOPT_HEADERDATA, static_cast<void*>(&state));
  curl_write_callback body_cb = &OnBody;
  api->easy_setopt(c, CURLOPT_WRITEFUNCTION, body_cb);
  api->easy_setopt(c, CURLOPT_WRITEDATA, static_cast<void*>(&state));
  curl_xferinfo_callback progress_cb = &OnProgress;
  api->easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
  api->easy_setopt(c, CURLOPT_XFERINFODATA, static_cast<void*>(&state));
  api->easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

  CURLcode rc = api->easy_perform(c);
  if (file && std::fflush(file.get()) != 0) state.write_failed = true;
  if (state.write_failed) {
    return Internal(what + ": cannot write " + request.output_file.string() + ": " +
                    std::strerror(errno));
  }
  if (rc != CURLE_OK) {
    std::string host = UrlHost(request.url);
    switch (rc) {
      case CURLE_ABORTED_BY_CALLBACK:
        return Unavailable(what + ": cancelled");
      case CURLE_COULDNT_RESOLVE_HOST:
        return Unavailable(what + ": could not resolve host '" + host + "'");
      case CURLE_COULDNT_CONNECT:
        return Unavailable(what + ": could not connect to '" + host + "' (" +
                           api->easy_strerror(rc) + ")");
      case CURLE_OPERATION_TIMEDOUT:
        return DeadlineExceeded(what + ": timed out talking to '" + host + "'");
      case CURLE_URL_MALFORMAT:
      case CURLE_UNSUPPORTED_PROTOCOL:
        return InvalidArgument(what + ": " + api->easy_strerror(rc));
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CERTPROBLEM:
        // Retrying cannot fix a certificate.
        return FailedPrecondition(what + ": TLS with '" + host +
                                  "' failed: " + api->easy_strerror(rc) +
                                  " (see AWS_CA_BUNDLE / S3_VERIFY_SSL for S3)");
      default:
        return Unavailable(what + ": transfer from '" + host +
                           "' failed: " + api->easy_strerror(rc));
    }
  }
  long code = 0;
  api->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  response.status = static_cast<int>(code);
  return response;
}

}  // namespace quiver::storage
