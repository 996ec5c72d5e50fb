#include "loadgen/model_inputs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "loadgen/request_encoding.h"

namespace quiver::loadgen {
namespace {

using ::testing::HasSubstr;

// What `GET /v2/models/add_sub` answers (Quiver's built-in add_sub, Triton's example).
constexpr std::string_view kAddSubMetadata =
    R"({"name":"add_sub","versions":["1"],"platform":"","inputs":[)"
    R"({"name":"INPUT0","datatype":"INT32","shape":[-1,16]},)"
    R"({"name":"INPUT1","datatype":"INT32","shape":[-1,16]}],)"
    R"("outputs":[{"name":"OUTPUT0","datatype":"INT32","shape":[-1,16]},)"
    R"({"name":"OUTPUT1","datatype":"INT32","shape":[-1,16]}]})";

ModelSpec AddSub() {
  auto spec = ParseModelMetadataJson(kAddSubMetadata);
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return *spec;
}

TEST(Metadata, ParsesTheV2Form) {
  ModelSpec spec = AddSub();
  EXPECT_EQ(spec.name, "add_sub");
  EXPECT_EQ(spec.versions, std::vector<std::string>{"1"});
  ASSERT_EQ(spec.inputs.size(), 2u);
  EXPECT_EQ(spec.inputs[1].name, "INPUT1");
  EXPECT_EQ(spec.inputs[1].datatype, DataType::kInt32);
  EXPECT_EQ(spec.inputs[1].shape, (Shape{-1, 16}));
  EXPECT_EQ(spec.outputs.size(), 2u);
}

TEST(Metadata, NamesWhatIsWrong) {
  auto bad = ParseModelMetadataJson(
      R"({"name":"m","inputs":[{"name":"x","datatype":"INT33","shape":[1]}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("inputs[0].datatype"));
  bad = ParseModelMetadataJson(
      R"({"name":"m","inputs":[{"name":"x","datatype":"FP32","shape":[1,-2]}]})");
  EXPECT_THAT(bad.status().message(), HasSubstr("inputs[0].shape[1]"));
  EXPECT_FALSE(ParseModelMetadataJson(R"({"error":"Model not found"})").ok());
  EXPECT_FALSE(ParseModelMetadataJson("not json").ok());
}

TEST(Shapes, BatchSizeFillsTheVariableFirstDimension) {
  auto r = ResolveInputShapes(AddSub().inputs, 8, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)[0].shape, (Shape{8, 16}));
  EXPECT_EQ((*r)[1].shape, (Shape{8, 16}));
}

TEST(Shapes, OverridesFullRankOrAfterTheBatchDimension) {
  std::vector<TensorSpec> in = {{"seq", DataType::kInt64, {-1, -1}},
                                {"mask", DataType::kBool, {-1, 4, -1}}};
  auto r = ResolveInputShapes(in, 2,
                              {*ParseShapeOverride("seq:128"), *ParseShapeOverride("mask:3,4,7")});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)[0].shape, (Shape{2, 128}));   // rank - 1: after the batch dimension
  EXPECT_EQ((*r)[1].shape, (Shape{3, 4, 7}));  // full rank
  // Without an override, other variable dimensions are 1.
  r = ResolveInputShapes(in, 1, {});
  EXPECT_EQ((*r)[0].shape, (Shape{1, 1}));
  EXPECT_EQ((*r)[1].shape, (Shape{1, 4, 1}));
}

TEST(Shapes, RefusesWhatTheModelCannotTake) {
  std::vector<TensorSpec> fixed = {{"x", DataType::kFp32, {1, 3}}};
  auto r = ResolveInputShapes(fixed, 4, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("does not take batches"));
  r = ResolveInputShapes(AddSub().inputs, 1, {*ParseShapeOverride("INPUT0:1,8")});
  EXPECT_THAT(r.status().message(), HasSubstr("fixes it at 16"));
  r = ResolveInputShapes(AddSub().inputs, 1, {*ParseShapeOverride("NOPE:1")});
  EXPECT_THAT(r.status().message(), HasSubstr("INPUT0, INPUT1"));
  r = ResolveInputShapes(AddSub().inputs, 1, {*ParseShapeOverride("INPUT0:1,2,3")});
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(ParseShapeOverride("INPUT0").ok());
  EXPECT_FALSE(ParseShapeOverride("INPUT0:0").ok());
  EXPECT_FALSE(ParseShapeOverride("INPUT0:2,x").ok());
  // Names may contain ':' (the last one separates the dimensions).
  EXPECT_EQ(ParseShapeOverride("ns:in:4,5")->name, "ns:in");
}

TEST(Generate, RandomRespectsTypesAndNeverGivesZero) {
  std::vector<TensorSpec> specs = {
      {"i8", DataType::kInt8, {64}},    {"u8", DataType::kUint8, {64}},
      {"i32", DataType::kInt32, {256}}, {"u64", DataType::kUint64, {64}},
      {"f16", DataType::kFp16, {256}},  {"bf16", DataType::kBf16, {64}},
      {"f32", DataType::kFp32, {1024}}, {"f64", DataType::kFp64, {64}},
      {"b", DataType::kBool, {64}},     {"s", DataType::kBytes, {3}}};
  std::mt19937_64 rng(42);
  std::vector<Tensor> t = GenerateInputs(specs, InputValues::kRandom, rng, 5);
  ASSERT_EQ(t.size(), specs.size());
  for (const Tensor& x : t) EXPECT_TRUE(ValidateTensorData(x).ok()) << x.name;
  for (int8_t v : t[0].values<int8_t>()) EXPECT_TRUE(v >= 1 && v <= 100) << int{v};
  for (uint8_t v : t[1].values<uint8_t>()) EXPECT_TRUE(v >= 1 && v <= 100);
  for (int32_t v : t[2].values<int32_t>()) EXPECT_TRUE(v >= 1 && v <= 100);
  for (uint64_t v : t[3].values<uint64_t>()) EXPECT_TRUE(v >= 1 && v <= 100);
  for (uint16_t h : t[4].values<uint16_t>()) {
    float f = HalfToFloat(h);
    EXPECT_TRUE(f > 0 && f <= 1) << f;
  }
  for (uint16_t b : t[5].values<uint16_t>()) EXPECT_NE(b & 0x7fff, 0);
  for (float v : t[6].values<float>()) EXPECT_TRUE(v > 0 && v < 1) << v;
  for (double v : t[7].values<double>()) EXPECT_TRUE(v > 0 && v < 1) << v;
  int trues = 0;
  for (uint8_t v : t[8].values<uint8_t>()) {
    EXPECT_LE(v, 1);
    trues += v;
  }
  EXPECT_GT(trues, 0);
  EXPECT_LT(trues, 64);
  std::vector<std::string> strings;
  ForEachBytesElement(t[9].data, [&](std::string_view s) { strings.emplace_back(s); });
  ASSERT_EQ(strings.size(), 3u);
  for (const auto& s : strings) {
    EXPECT_EQ(s.size(), 5u);
    for (char c : s) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << s;
  }
}

TEST(Generate, SameSeedSameValues) {
  std::mt19937_64 a(7), b(7), c(8);
  auto spec = *ResolveInputShapes(AddSub().inputs, 1, {});
  auto x = GenerateInputs(spec, InputValues::kRandom, a, 0);
  auto y = GenerateInputs(spec, InputValues::kRandom, b, 0);
  auto z = GenerateInputs(spec, InputValues::kRandom, c, 0);
  EXPECT_EQ(0, std::memcmp(x[0].data.data(), y[0].data.data(), x[0].data.size()));
  EXPECT_NE(0, std::memcmp(x[0].data.data(), z[0].data.data(), x[0].data.size()));
}

TEST(Generate, ZeroMode) {
  std::mt19937_64 rng(1);
  auto t = GenerateInputs({{"x", DataType::kFp32, {4}}, {"s", DataType::kBytes, {2}}},
                          InputValues::kZero, rng, 3);
  for (float v : t[0].values<float>()) EXPECT_EQ(v, 0.0f);
  ForEachBytesElement(t[1].data, [](std::string_view s) { EXPECT_EQ(s, "000"); });
}

TEST(Encode, JsonBodyFromMetadata) {
  auto spec = *ResolveInputShapes(AddSub().inputs, 2, {});
  std::mt19937_64 rng(3);
  auto inputs = GenerateInputs(spec, InputValues::kZero, rng, 0);
  auto body = EncodeJsonInferBody(inputs);
  ASSERT_TRUE(body.ok());
  std::string zeros = "[0";
  for (int i = 1; i < 32; ++i) zeros += ",0";
  zeros += "]";
  EXPECT_EQ(*body, R"({"inputs":[{"name":"INPUT0","shape":[2,16],"datatype":"INT32","data":)" +
                       zeros + R"(},{"name":"INPUT1","shape":[2,16],"datatype":"INT32","data":)" +
                       zeros + "}]}");
}

TEST(Encode, JsonValuesOfEveryKind) {
  BytesTensorBuilder b;
  b.Append("a\"b");
  float f[2] = {0.5f, 1.25f};
  std::vector<Tensor> in = {
      {"s", DataType::kBytes, {1}, {}, b.Finish()},
      {"f", DataType::kFp32, {2}, {}, TensorData::CopyOf(f, sizeof(f))},
  };
  EXPECT_EQ(*EncodeJsonInferBody(in),
            R"({"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["a\"b"]},)"
            R"({"name":"f","shape":[2],"datatype":"FP32","data":[0.5,1.25]}]})");
  uint16_t h = FloatToHalf(1.0f);
  auto fp16 = EncodeJsonInferBody({{"h", DataType::kFp16, {1}, {}, TensorData::CopyOf(&h, 2)}});
  ASSERT_FALSE(fp16.ok());
  EXPECT_THAT(fp16.status().message(), HasSubstr("--binary"));
}

TEST(Encode, BinaryBodyHeaderThenBytes) {
  int32_t a[2] = {1, 2};
  std::vector<Tensor> in = {{"INPUT0", DataType::kInt32, {1, 2}, {}, TensorData::CopyOf(a, 8)}};
  size_t header = 0;
  std::string body = EncodeBinaryInferBody(in, &header);
  std::string json =
      R"({"inputs":[{"name":"INPUT0","shape":[1,2],"datatype":"INT32","parameters":{"binary_data_size":8}}],)"
      R"("parameters":{"binary_data_output":true}})";
  EXPECT_EQ(header, json.size());
  EXPECT_EQ(body.substr(0, header), json);
  EXPECT_EQ(body.size(), header + 8);
  EXPECT_EQ(0, std::memcmp(body.data() + header, a, 8));
}

TEST(Encode, HttpRequestAndPath) {
  EXPECT_EQ(ModelPath("add_sub", ""), "/v2/models/add_sub");
  EXPECT_EQ(ModelPath("a b/c", "2"), "/v2/models/a%20b%2Fc/versions/2");
  std::string r = HttpPostRequest("h:1", "/v2/models/m/infer", "{}", std::nullopt);
  EXPECT_EQ(r,
            "POST /v2/models/m/infer HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\n\r\n{}");
  r = HttpPostRequest("h:1", "/p", "0123", 2);
  EXPECT_THAT(r, HasSubstr("Inference-Header-Content-Length: 2\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 4\r\n\r\n0123"));
}

TEST(Encode, GrpcRawContents) {
  int32_t a[2] = {5, 6};
  auto req = EncodeGrpcInferRequest(
      "m", "1", {{"x", DataType::kInt32, {1, 2}, {}, TensorData::CopyOf(a, 8)}});
  EXPECT_EQ(req.model_name(), "m");
  EXPECT_EQ(req.model_version(), "1");
  ASSERT_EQ(req.inputs_size(), 1);
  EXPECT_EQ(req.inputs(0).datatype(), "INT32");
  EXPECT_EQ(req.inputs(0).shape_size(), 2);
  ASSERT_EQ(req.raw_input_contents_size(), 1);
  EXPECT_EQ(req.raw_input_contents(0), std::string(reinterpret_cast<char*>(a), 8));
}

TEST(InputData, PerfAnalyzerFormat) {
  auto spec = *ResolveInputShapes(AddSub().inputs, 1, {});
  std::string ones = "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]";
  std::string json = R"({"data":[{"INPUT0":)" + ones + R"(,"INPUT1":{"content":[[)" +
                     ones.substr(1, ones.size() - 2) + R"(],[)" + ones.substr(1, ones.size() - 2) +
                     R"(]],"shape":[2,16]}},{"INPUT0":)" + ones + R"(,"INPUT1":)" + ones + "}]}";
  auto sets = ParseInputData(json, spec);
  ASSERT_TRUE(sets.ok()) << sets.status().message();
  ASSERT_EQ(sets->size(), 2u);
  EXPECT_EQ((*sets)[0][0].shape, (Shape{1, 16}));
  EXPECT_EQ((*sets)[0][1].shape, (Shape{2, 16}));
  EXPECT_EQ((*sets)[0][1].values<int32_t>()[31], 1);
}

TEST(InputData, V2RequestBody) {
  auto spec = *ResolveInputShapes(AddSub().inputs, 1, {});
  auto sets = ParseInputData(
      R"({"id":"x","inputs":[{"name":"INPUT1","shape":[1,2],"datatype":"INT32","data":[3,4]},)"
      R"({"name":"INPUT0","shape":[1,2],"datatype":"INT32","data":[1,2]}]})",
      spec);
  ASSERT_TRUE(sets.ok()) << sets.status().message();
  ASSERT_EQ(sets->size(), 1u);
  EXPECT_EQ((*sets)[0][0].name, "INPUT1");
  EXPECT_EQ((*sets)[0][0].values<int32_t>()[1], 4);
}

TEST(InputData, ErrorsNameTheField) {
  auto spec = *ResolveInputShapes({{"x", DataType::kUint8, {-1, 2}}}, 1, {});
  auto r = ParseInputData(R"({"data":[{"x":[1,300]}]})", spec);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("data[0].x[1]"));
  EXPECT_THAT(r.status().message(), HasSubstr("UINT8"));
  r = ParseInputData(R"({"data":[{"x":[1,2,3]}]})", spec);
  EXPECT_THAT(r.status().message(), HasSubstr("3 values for shape [1, 2]"));
  r = ParseInputData(R"({"data":[{"y":[1,2]}]})", spec);
  EXPECT_THAT(r.status().message(), HasSubstr("data[0].x: missing"));
  r = ParseInputData(R"({"data":[{"x":{"b64":"AAE="}}]})", spec);
  EXPECT_THAT(r.status().message(), HasSubstr("b64"));
  r = ParseInputData(R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[1,2]}]})",
                     spec);
  EXPECT_THAT(r.status().message(), HasSubstr("UINT8"));
  EXPECT_FALSE(ParseInputData(R"({"data":[]})", spec).ok());
  EXPECT_FALSE(ParseInputData(R"([1,2])", spec).ok());
}

TEST(Float16, RoundTripsAndRounds) {
  for (float f : {0.0f, 1.0f, -2.0f, 0.5f, 65504.0f, 6.103515625e-05f, 5.9604645e-08f}) {
    EXPECT_EQ(HalfToFloat(FloatToHalf(f)), f) << f;
  }
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);                // overflow: +inf
  EXPECT_EQ(FloatToHalf(1.0f + 1.0f / 2048), 0x3c00);  // a tie, to even: down
  EXPECT_EQ(FloatToHalf(1.0f + 3.0f / 2048), 0x3c02);  // a tie, to even: up
  EXPECT_EQ(FloatToBfloat16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBfloat16(-2.0f), 0xc000);
}

}  // namespace
}  // namespace quiver::loadgen

namespace quiver::loadgen {
namespace {

TEST(InputData, ModelWithoutDeclaredInputsTakesTheBodyAsWritten) {
  auto sets = ParseInputData(
      R"({"inputs":[{"name":"anything","shape":[2],"datatype":"FP64","data":[0.5,2]}]})", {});
  ASSERT_TRUE(sets.ok()) << sets.status().message();
  const Tensor& t = (*sets)[0][0];
  EXPECT_EQ(t.name, "anything");
  EXPECT_EQ(t.datatype, DataType::kFp64);
  EXPECT_EQ(t.values<double>()[1], 2.0);
  EXPECT_FALSE(ParseInputData(R"({"inputs":[{"name":"a","shape":[1],"data":[1]}]})", {}).ok());
  EXPECT_FALSE(
      ParseInputData(R"({"inputs":[{"name":"a","datatype":"INT8","data":[1]}]})", {}).ok());
}

}  // namespace
}  // namespace quiver::loadgen
