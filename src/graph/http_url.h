// Splits a step's http:// URL into the backend to connect to and the request target. Pure;
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace quiver::graph {

struct HttpUrl {
  std::string host;     // without brackets for IPv6
  uint16_t port = 80;
  std::string target;   // path and query, "/" when the URL has none
};

// "http://host[:port][/path][?query]". kInvalidArgument names the URL and what is wrong;
// https:// is refused with kUnimplemented (the router's client speaks plain HTTP).
StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

}  // namespace quiver::graph
