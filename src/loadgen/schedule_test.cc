#include "loadgen/schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace quiver::loadgen {
namespace {

using std::chrono::nanoseconds;

TEST(Schedule, ConstantIsEvenlySpacedWithoutDrift) {
  RequestSchedule s(Distribution::kConstant, 3.0, nullptr);  // every 333,333,333.3 ns
  EXPECT_EQ(s.Next(), nanoseconds(0));
  EXPECT_EQ(s.Next(), nanoseconds(333'333'333));
  EXPECT_EQ(s.Next(), nanoseconds(666'666'666));
  for (int i = 3; i < 3000; ++i) s.Next();
  EXPECT_NEAR(s.Next().count(), 1'000'000'000'000, 1);  // the 3000th: 1000 s, no drift
}

TEST(Schedule, ConstantPhaseShiftsEverySend) {
  RequestSchedule s(Distribution::kConstant, 1000.0, nullptr, nanoseconds(500'000));
  EXPECT_EQ(s.Next(), nanoseconds(500'000));
  EXPECT_EQ(s.Next(), nanoseconds(1'500'000));
}

TEST(Schedule, PoissonGapsAreExponentialOfTheInjectedValues) {
  // u -> gap = -ln(1 - u) / rate. With rate 1000/s the mean gap is 1 ms.
  std::vector<double> values = {0.0, 1 - std::exp(-1.0), 0.5, 1 - std::exp(-3.0)};
  size_t i = 0;
  RequestSchedule s(Distribution::kPoisson, 1000.0, [&] { return values[i++]; });
  EXPECT_EQ(s.Next(), nanoseconds(0));                    // u = 0: no gap
  EXPECT_NEAR(s.Next().count(), 1'000'000, 1);            // -ln(e^-1) = 1 mean gap
  EXPECT_NEAR(s.Next().count(), 1'000'000 + 693'147, 1);  // ln 2 ms
  EXPECT_NEAR(s.Next().count(), 4'000'000 + 693'147, 1);  // + 3 ms
  EXPECT_EQ(i, values.size());
}

TEST(Schedule, PoissonMeanRateMatchesWithUniformValues) {
  // A deterministic, evenly spread sequence of u values: the mean of -ln(1-u) over it is ~1.
  const int n = 100000;
  int k = 0;
  RequestSchedule s(Distribution::kPoisson, 500.0, [&] { return (k++ + 0.5) / n; });
  nanoseconds last{0};
  for (int j = 0; j < n; ++j) last = s.Next();
  double seconds = static_cast<double>(last.count()) / 1e9;
  EXPECT_NEAR(n / seconds, 500.0, 5.0);
}

TEST(Schedule, PoissonToleratesOutOfRangeValues) {
  RequestSchedule s(Distribution::kPoisson, 10.0, [] { return 1.0; });  // would be -ln(0)
  EXPECT_EQ(s.Next(), nanoseconds(0));
}

}  // namespace
}  // namespace quiver::loadgen
