// Spans and their OTLP/HTTP JSON encoding (opentelemetry-proto's ExportTraceServiceRequest in
// the protobuf JSON mapping, as OTLP/HTTP specifies it: ids as lowercase hex, 64-bit integers
// and unix-nano times as decimal strings, enums as numbers). Pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "observe/trace_context.h"

namespace quiver::observe {

enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3 };

struct SpanAttribute {
  using Value = std::variant<std::string, int64_t, double, bool>;
  std::string_view key;  // a string literal, or text that outlives the record
  Value value;
};

struct SpanRecord {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // all zero: a root span (the field is then left out)
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  std::string trace_state;
  uint64_t start_unix_nano = 0;
  uint64_t end_unix_nano = 0;
  std::vector<SpanAttribute> attributes;
  bool error = false;  // status ERROR with `status_message`; otherwise UNSET
  std::string status_message;
};

struct OtlpResource {
  std::string service_name = "quiver";
  std::string service_version;
  std::string scope_name = "quiver";
};

// One ExportTraceServiceRequest body: a single resourceSpans entry (service.name, and
// service.version when set) with one scopeSpans entry holding `spans`.
std::string EncodeOtlpJson(const OtlpResource& resource, std::span<const SpanRecord> spans);

}  // namespace quiver::observe
