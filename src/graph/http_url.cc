#include "graph/http_url.h"

#include <charconv>

namespace quiver::graph {

StatusOr<HttpUrl> ParseHttpUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("step URL \"" + std::string(url) + "\": " + std::string(why));
  };
  constexpr std::string_view kHttp = "http://";
  if (url.substr(0, 8) == "https://") {
    return Status(StatusCode::kUnimplemented,
                  "step URL \"" + std::string(url) +
                      "\": https is not supported by the router's client; call the service over "
                      "http (inside a mesh, the sidecar adds TLS)");
  }
  if (url.substr(0, kHttp.size()) != kHttp) return bad("expected an http:// URL");
  std::string_view rest = url.substr(kHttp.size());
  size_t slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  HttpUrl out;
  if (slash == std::string_view::npos) {
    out.target = "/";
  } else {
    out.target = std::string(rest.substr(slash));
    if (out.target[0] == '?') out.target = "/" + out.target;
  }
  if (authority.find('@') != std::string_view::npos) return bad("user info is not supported");
  std::string_view port_text;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("expected ':port' after the IPv6 address");
      port_text = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (out.host.empty()) return bad("no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return bad("port must be a number in 1..65535, got \"" + std::string(port_text) + "\"");
    }
    out.port = static_cast<uint16_t>(port);
  }
  for (char c : out.target) {
    if (c == ' ' || c == '\r' || c == '\n' || c == '\t') return bad("whitespace in the path");
  }
  return out;
}

}  // namespace quiver::graph
