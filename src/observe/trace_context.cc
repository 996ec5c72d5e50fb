#include "observe/trace_context.h"

#include <random>

namespace quiver::observe {
namespace {

constexpr char kHex[] = "0123456789abcdef";

template <size_t N>
void AppendHexTo(const std::array<uint8_t, N>& bytes, std::string* out) {
  size_t at = out->size();
  out->resize(at + 2 * N);
  char* p = out->data() + at;
  for (size_t i = 0; i < N; ++i) {
    p[2 * i] = kHex[bytes[i] >> 4];
    p[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
}

template <size_t N>
std::string ToHex(const std::array<uint8_t, N>& bytes) {
  std::string out;
  AppendHexTo(bytes, &out);
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is invalid in traceparent
}

template <size_t N>
bool FromHex(std::string_view s, std::array<uint8_t, N>* out) {
  if (s.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    int hi = HexValue(s[2 * i]), lo = HexValue(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

template <size_t N>
bool AnyNonZero(const std::array<uint8_t, N>& bytes) {
  for (uint8_t b : bytes) {
    if (b != 0) return true;
  }
  return false;
}

std::mt19937_64& Generator() {
  thread_local std::mt19937_64 gen(std::random_device{}());
  return gen;
}

template <size_t N>
void FillRandom(std::array<uint8_t, N>* out) {
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t v = Generator()();
      for (size_t j = 0; j < 8 && i + j < N; ++j) (*out)[i + j] = static_cast<uint8_t>(v >> (8 * j));
    }
  } while (!AnyNonZero(*out));
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool TraceId::IsValid() const { return AnyNonZero(bytes); }
std::string TraceId::Hex() const { return ToHex(bytes); }
void TraceId::AppendHex(std::string* out) const { AppendHexTo(bytes, out); }
bool SpanId::IsValid() const { return AnyNonZero(bytes); }
std::string SpanId::Hex() const { return ToHex(bytes); }
void SpanId::AppendHex(std::string* out) const { AppendHexTo(bytes, out); }

TraceId NewTraceId() {
  TraceId id;
  FillRandom(&id.bytes);
  return id;
}

SpanId NewSpanId() {
  SpanId id;
  FillRandom(&id.bytes);
  return id;
}

std::string TraceContext::Traceparent() const {
  return FormatTraceparent(trace_id, span_id, sampled);
}

std::string FormatTraceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled) {
  std::string out;
  out.reserve(55);
  out += "00-";
  out += trace_id.Hex();
  out += '-';
  out += span_id.Hex();
  out += sampled ? "-01" : "-00";
  return out;
}

std::optional<TraceContext> ParseTraceparent(std::string_view traceparent,
                                             std::string_view tracestate) {
  // version "-" trace-id "-" parent-id "-" trace-flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55.
  std::string_view v = Trim(traceparent);
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  std::array<uint8_t, 1> version;
  if (!FromHex(v.substr(0, 2), &version) || version[0] == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; a later version may append fields after a '-'.
  if (version[0] == 0 ? v.size() != 55 : (v.size() > 55 && v[55] != '-')) return std::nullopt;
  TraceContext ctx;
  std::array<uint8_t, 1> flags;
  if (!FromHex(v.substr(3, 32), &ctx.trace_id.bytes) ||
      !FromHex(v.substr(36, 16), &ctx.span_id.bytes) || !FromHex(v.substr(53, 2), &flags)) {
    return std::nullopt;
  }
  if (!ctx.trace_id.IsValid() || !ctx.span_id.IsValid()) return std::nullopt;
  ctx.sampled = (flags[0] & 0x01) != 0;
  std::string_view state = Trim(tracestate);
  bool state_ok = state.size() <= 512;
  for (char c : state) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
      state_ok = false;
    }
  }
  if (state_ok) ctx.tracestate = std::string(state);
  return ctx;
}

bool ShouldSample(const TraceContext* parent, const TraceId& trace_id, double ratio) {
  if (parent != nullptr) return parent->sampled;
  if (ratio >= 1.0) return true;
  if (!(ratio > 0.0)) return false;
  uint64_t low = 0;
  for (size_t i = 8; i < 16; ++i) low = low << 8 | trace_id.bytes[i];
  // ratio * 2^64 as a double; below 1.0 it fits in uint64_t.
  auto bound = static_cast<uint64_t>(ratio * 18446744073709551616.0);
  return low < bound;
}

}  // namespace quiver::observe
