#include "spec/quantity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quiver::spec {
namespace {

TEST(ParseQuantity, ReadsKubernetesSuffixes) {
  EXPECT_DOUBLE_EQ(*ParseQuantity("500m"), 0.5);
  EXPECT_DOUBLE_EQ(*ParseQuantity("2"), 2);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1.5"), 1.5);
  EXPECT_DOUBLE_EQ(*ParseQuantity("256Mi"), 256.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1Gi"), 1073741824.0);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1G"), 1e9);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1k"), 1000);
  EXPECT_DOUBLE_EQ(*ParseQuantity("1e3"), 1000);
}

TEST(ParseQuantity, RejectsOtherText) {
  for (std::string_view bad : {"", "1GB", "one", "1 Gi", "Mi", "1.2.3"}) {
    StatusOr<double> q = ParseQuantity(bad);
    ASSERT_FALSE(q.ok()) << bad;
    EXPECT_THAT(q.status().message(), ::testing::HasSubstr("is not a quantity"));
  }
}

TEST(QuantityText, AcceptsBareNumbers) {
  EXPECT_EQ(*QuantityText(Json(1)), "1");
  EXPECT_EQ(*QuantityText(Json(0.5)), "0.5");
  EXPECT_EQ(*QuantityText(Json("1Gi")), "1Gi");
  EXPECT_FALSE(QuantityText(Json(true)).ok());
}

}  // namespace
}  // namespace quiver::spec
