#include "tensor/tensor.h"

#include <gtest/gtest.h>

namespace quiver {
namespace {

TEST(DataTypeTest, AllFourteenRoundTrip) {
  const char* names[] = {"BOOL",  "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                         "INT32", "INT64", "FP16",   "FP32",   "FP64",   "BF16", "BYTES"};
  size_t sizes[] = {1, 1, 2, 4, 8, 1, 2, 4, 8, 2, 4, 8, 2, 0};
  for (int i = 0; i < kDataTypeCount; ++i) {
    auto t = ParseDataType(names[i]);
    ASSERT_TRUE(t.has_value()) << names[i];
    EXPECT_EQ(DataTypeName(*t), names[i]);
    EXPECT_EQ(DataTypeSize(*t), sizes[i]) << names[i];
  }
  EXPECT_FALSE(ParseDataType("fp32").has_value());
  EXPECT_FALSE(ParseDataType("FLOAT").has_value());
}

TEST(TensorTest, ElementCount) {
  EXPECT_EQ(ElementCount({}), 1);
  EXPECT_EQ(ElementCount({2, 3}), 6);
  EXPECT_EQ(ElementCount({0, 5}), 0);
  EXPECT_EQ(ElementCount({-1, 5}), -1);
  EXPECT_EQ(ElementCount({1LL << 40, 1LL << 40}), -1);
}

TEST(TensorTest, ValidateFixedSize) {
  Tensor t{.name = "x", .datatype = DataType::kInt32, .shape = {2, 2}};
  t.data = TensorData::Allocate(16);
  EXPECT_TRUE(ValidateTensorData(t).ok());
  t.data = TensorData::Allocate(12);
  Status s = ValidateTensorData(t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("needs 16 bytes, got 12"), std::string::npos) << s.message();
}

TEST(TensorTest, BytesBuildValidateIterate) {
  BytesTensorBuilder b;
  b.Append("ab");
  b.Append("");
  b.Append(std::string("\0\xff", 2));
  Tensor t{.name = "s", .datatype = DataType::kBytes, .shape = {3}};
  t.data = b.Finish();
  EXPECT_EQ(t.data.size(), 4u * 3 + 4);
  EXPECT_TRUE(ValidateTensorData(t).ok());
  std::vector<std::string> got;
  ForEachBytesElement(t.data, [&](std::string_view e) { got.emplace_back(e); });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "ab");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], std::string("\0\xff", 2));

  t.shape = {2};
  EXPECT_FALSE(ValidateTensorData(t).ok());
  // A length running past the end.
  std::string bad("\x09\0\0\0abc", 7);
  t.shape = {1};
  t.data = TensorData::FromString(bad);
  Status s = ValidateTensorData(t);
  EXPECT_NE(s.message().find("declares 9 bytes but only 3 remain"), std::string::npos)
      << s.message();
}

TEST(TensorTest, BorrowKeepsOwnerAlive) {
  auto owner = std::make_shared<std::string>("abcdef");
  std::weak_ptr<std::string> weak = owner;
  TensorData d = TensorData::Borrow(owner->data() + 2, 3, owner);
  owner.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.data()), d.size()), "cde");
  EXPECT_EQ(d.mutable_data(), nullptr);
  d = TensorData();
  EXPECT_TRUE(weak.expired());
}

TEST(TensorTest, ParametersKeepOrderAndTypes) {
  Parameters p;
  p.Set("b", true);
  p.Set("a", int64_t{3});
  p.Set("b", false);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.begin()->first, "b");
  EXPECT_EQ(p.GetBool("b"), false);
  EXPECT_EQ(p.GetInt("a"), 3);
  EXPECT_EQ(p.GetInt("b"), std::nullopt);
  EXPECT_EQ(p.Find("zz"), nullptr);
}

}  // namespace
}  // namespace quiver
