#include "autoscale/duration.h"

#include <gtest/gtest.h>

namespace quiver::autoscale {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

nanoseconds Parse(std::string_view text) {
  StatusOr<nanoseconds> d = ParseGoDuration(text);
  EXPECT_TRUE(d.ok()) << text << ": " << d.status().ToString();
  return d.ok() ? *d : nanoseconds(-12345);
}

TEST(ParseGoDurationTest, AcceptsGoForms) {
  EXPECT_EQ(Parse("60s"), std::chrono::seconds(60));
  EXPECT_EQ(Parse("1m30s"), std::chrono::seconds(90));
  EXPECT_EQ(Parse("500ms"), milliseconds(500));
  EXPECT_EQ(Parse("1.5h"), std::chrono::minutes(90));
  EXPECT_EQ(Parse(".5s"), milliseconds(500));
  EXPECT_EQ(Parse("2.s"), std::chrono::seconds(2));
  EXPECT_EQ(Parse("1h2m3s4ms5us6ns"), std::chrono::hours(1) + std::chrono::minutes(2) +
                                          std::chrono::seconds(3) + milliseconds(4) +
                                          std::chrono::microseconds(5) + nanoseconds(6));
  EXPECT_EQ(Parse("3\xC2\xB5s"), std::chrono::microseconds(3));
  EXPECT_EQ(Parse("0"), nanoseconds(0));
  EXPECT_EQ(Parse("-1m"), std::chrono::seconds(-60));
  EXPECT_EQ(Parse("+6s"), std::chrono::seconds(6));
}

TEST(ParseGoDurationTest, RejectsWhatGoRejects) {
  for (std::string_view bad :
       {"", "60", "s", "1x", "1.5", ".s", "1m30", "--1s", "1 s", "abc", "1e3s", "9999999999h"}) {
    StatusOr<nanoseconds> d = ParseGoDuration(bad);
    EXPECT_FALSE(d.ok()) << bad;
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
    }
  }
  EXPECT_EQ(ParseGoDuration("2 s").status().message(),
            "\"2 s\" is not a duration (expected e.g. 60s, 1m30s, 500ms)");
}

TEST(FormatDurationTest, ShortestReadableForm) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(500)), "500ms");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(FormatDuration(milliseconds(6000)), "6s");
  EXPECT_EQ(FormatDuration(milliseconds(90'000)), "1m30s");
  EXPECT_EQ(FormatDuration(milliseconds(610'000)), "10m10s");
  EXPECT_EQ(FormatDuration(milliseconds(3'600'000)), "1h");
  EXPECT_EQ(FormatDuration(milliseconds(-2000)), "-2s");
}

}  // namespace
}  // namespace quiver::autoscale
