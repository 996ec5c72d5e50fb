#include "observe/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "common/curl_api.h"

namespace quiver::observe {
namespace {

// The response body is not needed: delivery only cares about the status.
size_t Discard(char*, size_t size, size_t nmemb, void*) { return size * nmemb; }

// curl's progress callback: a non-zero return aborts the transfer.
int AbortWhenPastDeadline(void* deadline_ns, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  int64_t d = static_cast<const std::atomic<int64_t>*>(deadline_ns)->load();
  return d != 0 && std::chrono::steady_clock::now().time_since_epoch().count() >= d ? 1 : 0;
}

}  // namespace

Status HttpClientAvailable() { return LoadCurl().status(); }

HttpClient::HttpClient(HttpClientOptions options) : options_(std::move(options)) {
  auto lib = LoadCurl();
  if (!lib.ok()) return;
  const CurlApi& api = **lib;
  CURL* curl = api.easy_init();
  curl_ = curl;
  if (curl == nullptr) return;
  // What stays the same for every call is set once; Post sets the rest. The option values'
  // types matter (variadic): long, pointers, curl_off_t, as curl.h says.
  api.easy_setopt(curl, CURLOPT_POST, 1L);
  api.easy_setopt(curl, CURLOPT_USERAGENT, options_.user_agent.c_str());
  api.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
  api.easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_write_callback discard = &Discard;
  api.easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  api.easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  if (options_.abort_deadline_ns != nullptr) {
    curl_xferinfo_callback abort = &AbortWhenPastDeadline;
    api.easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, abort);
    api.easy_setopt(curl, CURLOPT_XFERINFODATA,
                    static_cast<void*>(const_cast<std::atomic<int64_t>*>(
                        options_.abort_deadline_ns)));
    api.easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
}

HttpClient::~HttpClient() {
  if (curl_ != nullptr) (*LoadCurl())->easy_cleanup(static_cast<CURL*>(curl_));
}

StatusOr<int> HttpClient::Post(const std::string& url, const HttpHeaders& headers,
                               std::string_view body, std::chrono::milliseconds timeout) {
  QUIVER_ASSIGN_OR_RETURN(const CurlApi* lib, LoadCurl());
  const CurlApi& api = *lib;
  CURL* curl = static_cast<CURL*>(curl_);
  if (curl == nullptr) return Internal("libcurl: curl_easy_init failed");
  struct curl_slist* list = nullptr;
  for (const auto& [name, value] : headers) {
    std::string line = name + ": " + value;
    list = api.slist_append(list, line.c_str());
  }
  // No "Expect: 100-continue" round trip for larger bodies.
  list = api.slist_append(list, "Expect:");
  auto total = options_.timeout;
  if (timeout.count() > 0) total = std::min(total, timeout);
  total = std::max(total, std::chrono::milliseconds(1));
  api.easy_setopt(curl, CURLOPT_URL, url.c_str());
  api.easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  api.easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  api.easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  api.easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                  static_cast<long>(std::min(options_.connect_timeout, total).count()));
  api.easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(total.count()));
  CURLcode rc = api.easy_perform(curl);
  api.easy_setopt(curl, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
  api.slist_free_all(list);
  if (rc != CURLE_OK) {
    return Unavailable("POST " + url + ": " + api.easy_strerror(rc));
  }
  long code = 0;
  api.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  return static_cast<int>(code);
}

bool IsRetryableDelivery(const StatusOr<int>& status) {
  if (!status.ok()) return true;
  int code = *status;
  return code == 408 || code == 429 || (code >= 500 && code != 501);
}

StatusOr<int> RetryDelivery(const std::function<StatusOr<int>()>& attempt,
                            const RetryPolicy& policy,
                            const std::function<bool(std::chrono::milliseconds)>& wait,
                            int* attempts) {
  auto backoff = policy.initial_backoff;
  int made = 0;
  for (;;) {
    StatusOr<int> result = attempt();
    ++made;
    if (attempts != nullptr) *attempts = made;
    if (IsDelivered(result) || !IsRetryableDelivery(result) || made > policy.max_retries) {
      return result;
    }
    if (!wait(backoff)) return result;
    backoff = std::min(backoff * 2, policy.max_backoff);
  }
}

}  // namespace quiver::observe
