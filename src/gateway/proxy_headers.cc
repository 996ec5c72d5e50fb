#include "gateway/proxy_headers.h"

#include <boost/beast/core/string.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace quiver::gateway {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view kHopByHop[] = {
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te",         "trailer",    "trailers",         "transfer-encoding",  "upgrade",
};

bool IEquals(std::string_view a, std::string_view b) {
  return beast::iequals(beast::string_view(a.data(), a.size()),
                        beast::string_view(b.data(), b.size()));
}

// 128 random bits in hex, from a per-thread generator (no lock, no system call per id).
void NewRequestId(char out[32]) {
  thread_local std::mt19937_64 gen([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
           std::hash<std::thread::id>{}(std::this_thread::get_id());
  }());
  static constexpr char kHex[] = "0123456789abcdef";
  for (int half = 0; half < 2; ++half) {
    uint64_t v = gen();
    for (int i = 0; i < 16; ++i) out[half * 16 + i] = kHex[(v >> (i * 4)) & 0xf];
  }
}

// Removes the headers a Connection header names ("Connection: close, X-Foo" drops X-Foo).
template <typename Fields>
void RemoveConnectionListed(Fields& fields) {
  auto it = fields.find(bhttp::field::connection);
  if (it == fields.end()) return;
  std::vector<std::string> named;
  std::string_view value(it->value().data(), it->value().size());
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view token = value.substr(0, comma);
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
      token.remove_prefix(1);
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
    if (!token.empty() && !IEquals(token, "close") && !IEquals(token, "keep-alive")) {
      named.emplace_back(token);
    }
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  for (const auto& n : named) fields.erase(beast::string_view(n.data(), n.size()));
}

template <typename Fields>
void RemoveHopByHop(Fields& fields) {
  RemoveConnectionListed(fields);
  for (auto name : kHopByHop) fields.erase(beast::string_view(name.data(), name.size()));
}

}  // namespace

bool IsHopByHopHeader(std::string_view name) {
  for (auto h : kHopByHop) {
    if (IEquals(name, h)) return true;
  }
  return false;
}

std::string_view PrepareUpstreamRequest(http::Message& message, std::string_view target) {
  if (target.size() != message.target().size() || target.data() != message.target().data()) {
    std::string copy(target);  // `target` may view the message's own target
    message.target(copy);
  }
  RemoveHopByHop(message);
  // The server already answered "Expect: 100-continue"; the body is here.
  message.erase(bhttp::field::expect);
  if (message.find("x-request-id") == message.end()) {
    char id[32];
    NewRequestId(id);
    message.set("x-request-id", beast::string_view(id, sizeof(id)));
  }
  if (message.find("x-forwarded-host") == message.end()) {
    auto host = message[bhttp::field::host];
    if (!host.empty()) message.set("x-forwarded-host", host);
  }
  if (message.find("x-forwarded-proto") == message.end()) {
    message.set("x-forwarded-proto", "http");
  }
  auto id = message["x-request-id"];
  return {id.data(), id.size()};
}

void CopyUpstreamResponse(http::ResponseMessage& from, http::Response* to) {
  RemoveHopByHop(from);
  to->status = static_cast<int>(from.result_int());
  to->headers.reserve(8);
  for (const auto& field : from) {
    if (field.name() == bhttp::field::content_length) continue;
    auto name = field.name_string();
    auto value = field.value();
    to->headers.emplace_back(std::string(name.data(), name.size()),
                             std::string(value.data(), value.size()));
  }
  to->body = std::move(from.body());
}

}  // namespace quiver::gateway
