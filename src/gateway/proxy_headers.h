// How a request and its answer are rewritten when the gateway passes them on: hop-by-hop
// headers removed (RFC 9110 §7.6.1: Connection and the headers it names, Keep-Alive, TE, ...),
// forwarding headers set, a request id guaranteed. Pure functions on messages; thread-safe.
#pragma once

#include <string_view>

#include "http/client.h"
#include "http/server.h"

namespace quiver::gateway {

// True for headers that describe one connection and must not be forwarded.
bool IsHopByHopHeader(std::string_view name);

// Turns the client's request into the upstream one, in place: `target` replaces the target
// (the path form's prefix removed), hop-by-hop headers go, `x-request-id` is added when absent
// (kept when present, as Knative and KServe propagate it), `X-Forwarded-Host` and
// `X-Forwarded-Proto` are set when absent; `traceparent` and every other header are kept.
// Returns the request id.
std::string_view PrepareUpstreamRequest(http::Message& message, std::string_view target);

// Moves a backend's answer into the server's Response: status, body and headers except
// hop-by-hop ones and Content-Length (the server sets it).
void CopyUpstreamResponse(http::ResponseMessage& from, http::Response* to);

}  // namespace quiver::gateway
