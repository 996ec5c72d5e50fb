// W3C Trace Context (https://www.w3.org/TR/trace-context/): trace and span ids, the
// `traceparent` / `tracestate` headers, and the parent-based sampling decision. Pure values and
// functions; thread-safe (id generation uses a per-thread generator).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace quiver::observe {

struct TraceId {
  std::array<uint8_t, 16> bytes{};
  // All-zero ids are invalid (W3C).
  bool IsValid() const;
  std::string Hex() const;  // 32 lowercase hex digits
  void AppendHex(std::string* out) const;
  bool operator==(const TraceId&) const = default;
};

struct SpanId {
  std::array<uint8_t, 8> bytes{};
  bool IsValid() const;
  std::string Hex() const;  // 16 lowercase hex digits
  void AppendHex(std::string* out) const;
  bool operator==(const SpanId&) const = default;
};

// Random, never all-zero ids (a per-thread generator seeded from std::random_device).
TraceId NewTraceId();
SpanId NewSpanId();

// The context of one span as it crosses a process boundary. For an incoming header it names the
// remote parent span; for an outgoing call it names the span the call is made from.
struct TraceContext {
  TraceId trace_id;
  SpanId span_id;
  bool sampled = false;
  std::string tracestate;  // vendor data, passed on unchanged (at most 512 bytes)

  // The `traceparent` value to send on a call made from this span (version 00).
  std::string Traceparent() const;
};

// Parses an incoming `traceparent` (and its `tracestate`). nullopt when the header is absent or
// invalid: wrong length or separators, upper-case or non-hex digits, version ff, an all-zero
// trace or parent id, or extra characters after a version-00 value. Values of a higher version
// are read by their version-00 prefix, as the specification asks. A tracestate that is longer
// than 512 bytes or holds control characters is dropped (the traceparent is still used).
std::optional<TraceContext> ParseTraceparent(std::string_view traceparent,
                                             std::string_view tracestate = {});

std::string FormatTraceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled);

// Parent-based sampling: a request with a parent follows the parent's sampled flag; a root is
// sampled when its trace id falls under `ratio` (0..1): the id's last 8 bytes, read as a
// big-endian integer, below ratio * 2^64. Deciding from the id (as OpenTelemetry's
// TraceIdRatioBased sampler does) keeps the decision consistent for one trace.
bool ShouldSample(const TraceContext* parent, const TraceId& trace_id, double ratio);

}  // namespace quiver::observe
