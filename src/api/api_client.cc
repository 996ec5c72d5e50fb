#include "api/api_client.h"

#include <curl/curl.h>

#include <memory>

#include "common/curl_api.h"

namespace quiver::api {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

ApiClient::ApiClient(ApiClientOptions options) : options_(std::move(options)) {
  while (!options_.server.empty() && options_.server.back() == '/') options_.server.pop_back();
}

// libcurl is loaded on first use (storage/curl_api.h), so the `quiver` binary that also serves
// models does not map it unless a command needs it.
StatusOr<ApiReply> ApiClient::Call(std::string_view method, std::string_view path,
                                   std::string_view json_body) {
  QUIVER_ASSIGN_OR_RETURN(const CurlApi* api, LoadCurl());
  std::unique_ptr<CURL, void (*)(CURL*)> handle(api->easy_init(), api->easy_cleanup);
  CURL* curl = handle.get();
  if (curl == nullptr) return Internal("libcurl could not create a handle");
  std::string url = options_.server + std::string(path);
  std::string method_str(method);
  ApiReply reply;
  curl_slist* headers = nullptr;
  headers = api->slist_append(headers, "Accept: application/json");
  if (!json_body.empty()) headers = api->slist_append(headers, "Content-Type: application/json");
  std::string auth;
  if (!options_.token.empty()) {
    auth = "Authorization: Bearer " + options_.token;
    headers = api->slist_append(headers, auth.c_str());
  }
  curl_write_callback collect = &Collect;
  api->easy_setopt(curl, CURLOPT_URL, url.c_str());
  api->easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method_str.c_str());
  api->easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  api->easy_setopt(curl, CURLOPT_USERAGENT, "quiver-cli");
  api->easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  api->easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  api->easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  if (method == "HEAD") api->easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!json_body.empty()) {
    api->easy_setopt(curl, CURLOPT_POSTFIELDS, json_body.data());
    api->easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(json_body.size()));
  }
  api->easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  api->easy_setopt(curl, CURLOPT_WRITEDATA, static_cast<void*>(&reply.body));
  CURLcode rc = api->easy_perform(curl);
  api->slist_free_all(headers);
  if (rc != CURLE_OK) {
    return Unavailable("cannot reach the quiver API at " + options_.server + ": " +
                       api->easy_strerror(rc) + " (is `quiver up` running?)");
  }
  long code = 0;
  api->easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  reply.status = static_cast<int>(code);
  char* type = nullptr;
  api->easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) reply.content_type = type;
  return reply;
}

}  // namespace quiver::api
