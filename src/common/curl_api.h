// CurlApi: the libcurl functions Quiver uses (trace export, payload-log sinks, the storage
// initializer, the CLI's API client), loaded with dlopen on first use instead of linked, so that
// a `quiver serve` that sends and downloads nothing maps none of libcurl's libraries (about 4 MB
// of idle RSS). The table is loaded once per process and never unloaded;
// it is immutable afterwards and safe to use from any thread (each thread uses its own handles).
#pragma once

#include <curl/curl.h>

#include "common/status.h"

namespace quiver {

struct CurlApi {
  CURL* (*easy_init)();
  void (*easy_cleanup)(CURL*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  const char* (*easy_strerror)(CURLcode);
  curl_slist* (*slist_append)(curl_slist*, const char*);
  void (*slist_free_all)(curl_slist*);
};

// The loaded table, or kUnavailable naming the library and the Debian package when
// libcurl.so.4 (or one of the functions above) is missing. The first call initialises libcurl
// (curl_global_init) under a once-flag.
StatusOr<const CurlApi*> LoadCurl();

}  // namespace quiver
