#include "observe/trace_context.h"

#include <gtest/gtest.h>

#include <set>

namespace quiver::observe {
namespace {

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kSpanId[] = "00f067aa0ba902b7";

std::string Header(std::string_view version, std::string_view trace, std::string_view span,
                   std::string_view flags) {
  return std::string(version) + "-" + std::string(trace) + "-" + std::string(span) + "-" +
         std::string(flags);
}

TEST(Traceparent, ParsesAValidHeader) {
  auto ctx = ParseTraceparent(Header("00", kTraceId, kSpanId, "01"), "congo=t61rcWkgMzE");
  ASSERT_TRUE(ctx.has_value());
  EXPECT_EQ(ctx->trace_id.Hex(), kTraceId);
  EXPECT_EQ(ctx->span_id.Hex(), kSpanId);
  EXPECT_TRUE(ctx->sampled);
  EXPECT_EQ(ctx->tracestate, "congo=t61rcWkgMzE");
}

TEST(Traceparent, ReadsOnlyTheSampledFlag) {
  EXPECT_FALSE(ParseTraceparent(Header("00", kTraceId, kSpanId, "00"))->sampled);
  EXPECT_TRUE(ParseTraceparent(Header("00", kTraceId, kSpanId, "03"))->sampled);
  EXPECT_FALSE(ParseTraceparent(Header("00", kTraceId, kSpanId, "02"))->sampled);
}

TEST(Traceparent, TrimsSurroundingWhitespace) {
  EXPECT_TRUE(ParseTraceparent(" " + Header("00", kTraceId, kSpanId, "01") + "\t").has_value());
}

TEST(Traceparent, RejectsInvalidHeaders) {
  std::string valid = Header("00", kTraceId, kSpanId, "01");
  const std::vector<std::string> invalid = {
      "",
      "garbage",
      valid.substr(0, 54),                                          // too short
      valid + "0",                                                  // version 00 is 55 long
      valid + "-extra",                                             // ... even with a dash
      Header("ff", kTraceId, kSpanId, "01"),                        // forbidden version
      Header("0g", kTraceId, kSpanId, "01"),                        // non-hex version
      Header("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kSpanId, "01"),  // upper case
      Header("00", "00000000000000000000000000000000", kSpanId, "01"),  // all-zero trace id
      Header("00", kTraceId, "0000000000000000", "01"),             // all-zero parent id
      Header("00", kTraceId, "00f067aa0ba902bz", "01"),             // non-hex parent id
      Header("00", kTraceId, kSpanId, "0x"),                        // non-hex flags
      Header("00", "4bf92f3577b34da6a3ce929d0e0e473", "600f067aa0ba902b7", "01"),  // shifted
      "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",    // separators
  };
  for (const auto& h : invalid) EXPECT_FALSE(ParseTraceparent(h).has_value()) << h;
}

TEST(Traceparent, ReadsHigherVersionsByTheirVersion00Prefix) {
  auto ctx = ParseTraceparent(Header("01", kTraceId, kSpanId, "01") + "-what-comes-next");
  ASSERT_TRUE(ctx.has_value());
  EXPECT_EQ(ctx->trace_id.Hex(), kTraceId);
  EXPECT_TRUE(ParseTraceparent(Header("cc", kTraceId, kSpanId, "00")).has_value());
  // After the version-00 fields, a later version must continue with a dash.
  EXPECT_FALSE(ParseTraceparent(Header("01", kTraceId, kSpanId, "01") + "x").has_value());
}

TEST(Traceparent, DropsAnUnusableTracestateButKeepsTheParent) {
  auto ctx = ParseTraceparent(Header("00", kTraceId, kSpanId, "01"), std::string(513, 'a'));
  ASSERT_TRUE(ctx.has_value());
  EXPECT_EQ(ctx->tracestate, "");
  ctx = ParseTraceparent(Header("00", kTraceId, kSpanId, "01"), "a=b\nc=d");
  ASSERT_TRUE(ctx.has_value());
  EXPECT_EQ(ctx->tracestate, "");
}

TEST(Traceparent, FormatsVersion00AndRoundTrips) {
  auto ctx = ParseTraceparent(Header("00", kTraceId, kSpanId, "01"));
  ASSERT_TRUE(ctx.has_value());
  EXPECT_EQ(ctx->Traceparent(), Header("00", kTraceId, kSpanId, "01"));
  ctx->sampled = false;
  EXPECT_EQ(ctx->Traceparent(), Header("00", kTraceId, kSpanId, "00"));
  // A later version is answered in version 00.
  auto later = ParseTraceparent(Header("02", kTraceId, kSpanId, "01") + "-x");
  EXPECT_EQ(later->Traceparent(), Header("00", kTraceId, kSpanId, "01"));
}

TEST(TraceIds, NewIdsAreValidAndDistinct) {
  std::set<std::string> traces, spans;
  for (int i = 0; i < 1000; ++i) {
    TraceId t = NewTraceId();
    SpanId s = NewSpanId();
    EXPECT_TRUE(t.IsValid());
    EXPECT_TRUE(s.IsValid());
    traces.insert(t.Hex());
    spans.insert(s.Hex());
  }
  EXPECT_EQ(traces.size(), 1000u);
  EXPECT_EQ(spans.size(), 1000u);
  EXPECT_FALSE(TraceId{}.IsValid());
  EXPECT_FALSE(SpanId{}.IsValid());
}

TraceId IdWithLow(uint64_t low) {
  TraceId id;
  id.bytes[0] = 1;
  for (int i = 0; i < 8; ++i) id.bytes[15 - i] = static_cast<uint8_t>(low >> (8 * i));
  return id;
}

TEST(Sampling, FollowsTheParentWhateverTheRatio) {
  TraceContext parent;
  parent.sampled = true;
  EXPECT_TRUE(ShouldSample(&parent, IdWithLow(~0ull), 0.0));
  parent.sampled = false;
  EXPECT_FALSE(ShouldSample(&parent, IdWithLow(0), 1.0));
}

TEST(Sampling, RootsAreSampledByTheirTraceIdUnderTheRatio) {
  EXPECT_TRUE(ShouldSample(nullptr, IdWithLow(~0ull), 1.0));
  EXPECT_FALSE(ShouldSample(nullptr, IdWithLow(0), 0.0));
  EXPECT_TRUE(ShouldSample(nullptr, IdWithLow(0x7fffffffffffffffull), 0.5));
  EXPECT_FALSE(ShouldSample(nullptr, IdWithLow(0x8000000000000001ull), 0.5));
  // The same trace id always gets the same answer.
  TraceId id = NewTraceId();
  bool first = ShouldSample(nullptr, id, 0.3);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ShouldSample(nullptr, id, 0.3), first);
}

TEST(Sampling, RandomRootsAreSampledAtAboutTheRatio) {
  int sampled = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) sampled += ShouldSample(nullptr, NewTraceId(), 0.25);
  // 0.25 * 20000 = 5000, standard deviation ~61: 4700..5300 is about 5 sigma.
  EXPECT_GT(sampled, 4700);
  EXPECT_LT(sampled, 5300);
}

}  // namespace
}  // namespace quiver::observe
