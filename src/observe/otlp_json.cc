#include "observe/otlp_json.h"

#include "observe/text.h"
#include "protocol/json_writer.h"

namespace quiver::observe {
namespace {

void WriteKeyValue(JsonWriter& w, std::string_view key, const SpanAttribute& attr) {
  w.Raw("{\"key\":");
  w.String(key);
  w.Raw(",\"value\":{");
  if (const auto* s = std::get_if<std::string>(&attr.value)) {
    w.Raw("\"stringValue\":");
    WriteSafeString(w, *s);
  } else if (const auto* i = std::get_if<int64_t>(&attr.value)) {
    // int64 is a string in the protobuf JSON mapping.
    w.Raw("\"intValue\":\"");
    w.Int(*i);
    w.Char('"');
  } else if (const auto* d = std::get_if<double>(&attr.value)) {
    w.Raw("\"doubleValue\":");
    w.Double(*d);
  } else {
    w.Raw("\"boolValue\":");
    w.Bool(std::get<bool>(attr.value));
  }
  w.Raw("}}");
}

void WriteNanos(JsonWriter& w, std::string_view key, uint64_t nanos) {
  w.Char('"');
  w.Raw(key);
  w.Raw("\":\"");
  w.Uint(nanos);
  w.Char('"');
}

void WriteSpan(JsonWriter& w, std::string* out, const SpanRecord& span) {
  w.Raw("{\"traceId\":\"");
  span.trace_id.AppendHex(out);
  w.Raw("\",\"spanId\":\"");
  span.span_id.AppendHex(out);
  w.Char('"');
  if (span.parent_span_id.IsValid()) {
    w.Raw(",\"parentSpanId\":\"");
    span.parent_span_id.AppendHex(out);
    w.Char('"');
  }
  if (!span.trace_state.empty()) {
    w.Raw(",\"traceState\":");
    w.String(span.trace_state);
  }
  w.Raw(",\"name\":");
  WriteSafeString(w, span.name);
  w.Raw(",\"kind\":");
  w.Int(static_cast<int>(span.kind));
  w.Char(',');
  WriteNanos(w, "startTimeUnixNano", span.start_unix_nano);
  w.Char(',');
  WriteNanos(w, "endTimeUnixNano", span.end_unix_nano);
  w.Raw(",\"attributes\":[");
  for (size_t i = 0; i < span.attributes.size(); ++i) {
    if (i) w.Char(',');
    WriteKeyValue(w, span.attributes[i].key, span.attributes[i]);
  }
  w.Raw("],\"status\":{");
  if (span.error) {
    w.Raw("\"code\":2");  // STATUS_CODE_ERROR
    if (!span.status_message.empty()) {
      w.Raw(",\"message\":");
      WriteSafeString(w, span.status_message);
    }
  }
  w.Raw("}}");
}

}  // namespace

std::string EncodeOtlpJson(const OtlpResource& resource, std::span<const SpanRecord> spans) {
  std::string out;
  out.reserve(512 + spans.size() * 600);
  JsonWriter w(&out);
  w.Raw("{\"resourceSpans\":[{\"resource\":{\"attributes\":[");
  WriteKeyValue(w, "service.name", SpanAttribute{"", resource.service_name});
  if (!resource.service_version.empty()) {
    w.Char(',');
    WriteKeyValue(w, "service.version", SpanAttribute{"", resource.service_version});
  }
  w.Raw("]},\"scopeSpans\":[{\"scope\":{\"name\":");
  w.String(resource.scope_name);
  if (!resource.service_version.empty()) {
    w.Raw(",\"version\":");
    w.String(resource.service_version);
  }
  w.Raw("},\"spans\":[");
  for (size_t i = 0; i < spans.size(); ++i) {
    if (i) w.Char(',');
    WriteSpan(w, &out, spans[i]);
  }
  w.Raw("]}]}]}");
  return out;
}

}  // namespace quiver::observe
