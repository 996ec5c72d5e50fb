#include "loadgen/load_range.h"

#include <gtest/gtest.h>

namespace quiver::loadgen {
namespace {

TEST(ConcurrencyRange, FactorDoublesUpToEnd) {
  auto r = ParseConcurrencyRange("1:64:x2");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, (std::vector<int64_t>{1, 2, 4, 8, 16, 32, 64}));
}

TEST(ConcurrencyRange, FactorStopsBelowEndWhenItDoesNotLandOnIt) {
  auto r = ParseConcurrencyRange("3:50:x3");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<int64_t>{3, 9, 27}));
}

TEST(ConcurrencyRange, LinearStepAndDefaults) {
  EXPECT_EQ(*ParseConcurrencyRange("1:8:2"), (std::vector<int64_t>{1, 3, 5, 7}));
  EXPECT_EQ(*ParseConcurrencyRange("2:4"), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(*ParseConcurrencyRange("16"), (std::vector<int64_t>{16}));
}

TEST(ConcurrencyRange, FractionalFactorMovesUpByAtLeastOne) {
  EXPECT_EQ(*ParseConcurrencyRange("1:5:x1.5"), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(*ParseConcurrencyRange("4:20:x1.5"), (std::vector<int64_t>{4, 6, 9, 13, 19}));
}

TEST(ConcurrencyRange, RejectsNonsense) {
  for (const char* bad : {"", "0", "0:4", "4:2", "1:8:0", "1:8:x1", "1:8:x", "a:b", "1:2:3:4",
                          "1.5", "1:8:1.5", "-1:4"}) {
    auto r = ParseConcurrencyRange(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  auto r = ParseConcurrencyRange("1:8:x1");
  EXPECT_NE(r.status().message().find("factor"), std::string::npos) << r.status().message();
}

TEST(RequestRateRange, FractionsLandOnEnd) {
  auto r = ParseRequestRateRange("0.5:2:0.5");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 4u);
  EXPECT_DOUBLE_EQ((*r)[3], 2.0);
  EXPECT_EQ(*ParseRequestRateRange("100:800:x2"), (std::vector<double>{100, 200, 400, 800}));
  EXPECT_EQ(*ParseRequestRateRange("250"), (std::vector<double>{250}));
}

TEST(RequestRateRange, RefusesHugeSweeps) {
  EXPECT_FALSE(ParseRequestRateRange("1:1000000:1").ok());
  EXPECT_FALSE(ParseRequestRateRange("0").ok());
}

}  // namespace
}  // namespace quiver::loadgen
