#include "graph/header_propagation.h"

#include <cctype>

namespace quiver::graph {

namespace {

bool NeverPropagated(const std::string& canonical) {
  // Hop-by-hop headers (RFC 9110 7.6.1) and those the client sets for its own request.
  static const char* const kNames[] = {
      "Host",    "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
      "Upgrade", "Te",             "Trailer",           "Proxy-Connection",
      "Proxy-Authenticate", "Proxy-Authorization", "Expect"};
  for (const char* name : kNames) {
    if (canonical == name) return true;
  }
  return false;
}

}  // namespace

std::string CanonicalHeaderName(std::string_view name) {
  std::string out(name);
  bool upper = true;
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    c = static_cast<char>(upper ? std::toupper(u) : std::tolower(u));
    upper = c == '-';
  }
  return out;
}

StatusOr<HeaderPropagation> HeaderPropagation::Create(const std::vector<std::string>& patterns) {
  HeaderPropagation out;
  std::string errors;
  for (const std::string& p : patterns) {
    if (p.empty()) continue;
    try {
      out.patterns_.emplace_back(p, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      errors += (errors.empty() ? "" : "; ") + std::string("header pattern \"") + p +
                "\" is not a valid regular expression: " + e.what();
    }
  }
  if (!errors.empty()) return InvalidArgument(errors);
  return out;
}

Headers HeaderPropagation::Select(const http::Message& request) const {
  Headers out;
  if (patterns_.empty()) return out;
  for (const auto& field : request) {
    std::string name = CanonicalHeaderName({field.name_string().data(), field.name_string().size()});
    if (NeverPropagated(name)) continue;
    for (const std::regex& pattern : patterns_) {
      if (std::regex_search(name, pattern)) {
        out.emplace_back(name, std::string(field.value()));
        break;
      }
    }
  }
  return out;
}

}  // namespace quiver::graph
