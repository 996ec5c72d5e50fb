#include "common/system.h"

#include <gtest/gtest.h>

#include <set>

namespace quiver {
namespace {

TEST(SystemTest, CpusAndMemoryArePositive) {
  EXPECT_GE(AvailableCpus(), 1);
  EXPECT_GT(ResidentBytes(), 0u);
  EXPECT_FALSE(ExecutableDir().empty());
}

TEST(SystemTest, UuidsAreVersion4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string u = NewUuid();
    ASSERT_EQ(u.size(), 36u);
    EXPECT_EQ(u[14], '4');
    EXPECT_TRUE(u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b') << u;
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace quiver
