// Which of a client's request headers the router passes on to every step: KServe's
// PROPAGATE_HEADERS semantics. Each pattern is a regular expression searched (unanchored, as Go's
// MatchString) in the header name in Go's canonical form ("x-request-id" → "X-Request-Id");
// a header matched by several patterns is passed once, with all its values. Headers that
// describe the connection or the body (Host, Content-Length, Connection, ...) never are.
// Immutable after Create; thread-safe.
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "graph/graph_engine.h"
#include "http/server.h"

namespace quiver::graph {

class HeaderPropagation {
 public:
  // kInvalidArgument names every pattern that is not a valid regular expression (KServe logs
  // and skips them; a typo that silently drops a header is worse than a refused start).
  static StatusOr<HeaderPropagation> Create(const std::vector<std::string>& patterns);
  HeaderPropagation() = default;

  // The headers of `request` to pass on, names canonical, in the request's order.
  Headers Select(const http::Message& request) const;
  bool empty() const { return patterns_.empty(); }

 private:
  std::vector<std::regex> patterns_;
};

// Go's textproto.CanonicalMIMEHeaderKey: upper case first letter and each letter after '-'.
std::string CanonicalHeaderName(std::string_view name);

}  // namespace quiver::graph
