#include "protocol/v2_json.h"

#include <gtest/gtest.h>

#include "protocol/json_writer.h"
#include "protocol/status_mapping.h"

namespace quiver {
namespace {

Status Decode(const std::string& body, InferRequest* r) { return DecodeV2Request(body, r); }

std::string DecodeError(const std::string& body) {
  InferRequest r;
  Status s = Decode(body, &r);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << body;
  return s.message();
}

std::string Input(const std::string& dt, const std::string& shape, const std::string& data) {
  return R"({"inputs":[{"name":"x","datatype":")" + dt + R"(","shape":)" + shape +
         R"(,"data":)" + data + "}]}";
}

TEST(V2JsonTest, DecodesNestedAndFlatData) {
  for (const char* data : {"[[1,2],[3,4]]", "[1,2,3,4]"}) {
    InferRequest r;
    ASSERT_TRUE(Decode(Input("INT32", "[2,2]", data), &r).ok()) << data;
    ASSERT_EQ(r.inputs.size(), 1u);
    auto v = r.inputs[0].values<int32_t>();
    ASSERT_EQ(v.size(), 4u);
    EXPECT_EQ(v[3], 4);
    EXPECT_EQ(r.inputs[0].shape, (Shape{2, 2}));
  }
}

TEST(V2JsonTest, DecodesIdParametersOutputs) {
  InferRequest r;
  std::string body = R"({"id":"r1","parameters":{"s":"a","b":true,"i":3,"f":1.5},
    "inputs":[{"name":"x","datatype":"BYTES","shape":[2],"data":["hi","\u00e9"],
               "parameters":{"k":1}}],
    "outputs":[{"name":"o","parameters":{"binary_data":false}}]})";
  ASSERT_TRUE(Decode(body, &r).ok());
  EXPECT_EQ(r.id, "r1");
  EXPECT_EQ(r.parameters.size(), 4u);
  EXPECT_EQ(r.parameters.GetBool("b"), true);
  EXPECT_EQ(r.parameters.GetInt("i"), 3);
  EXPECT_EQ(std::get<double>(*r.parameters.Find("f")), 1.5);
  EXPECT_EQ(r.inputs[0].parameters.GetInt("k"), 1);
  EXPECT_TRUE(ValidateTensorData(r.inputs[0]).ok());
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].name, "o");
}

TEST(V2JsonTest, AllFixedTypesAtTheirLimits) {
  struct Case {
    const char* dt;
    const char* ok;
    const char* bad;
  } cases[] = {
      {"BOOL", "[true,false]", "[1,0]"},
      {"UINT8", "[0,255]", "[0,256]"},
      {"UINT16", "[0,65535]", "[-1,0]"},
      {"UINT32", "[0,4294967295]", "[0,4294967296]"},
      {"UINT64", "[0,18446744073709551615]", "[0,-1]"},
      {"INT8", "[-128,127]", "[-129,0]"},
      {"INT16", "[-32768,32767]", "[0,32768]"},
      {"INT32", "[-2147483648,2147483647]", "[0,2147483648]"},
      {"INT64", "[-9223372036854775808,9223372036854775807]", "[0,9223372036854775808]"},
      {"FP32", "[-3.4e38,1]", "[1e39,0]"},
      {"FP64", "[1e308,-2.5]", "[\"a\",1]"},
  };
  for (const auto& c : cases) {
    InferRequest r;
    Status s = Decode(Input(c.dt, "[2]", c.ok), &r);
    EXPECT_TRUE(s.ok()) << c.dt << ": " << s.message();
    EXPECT_FALSE(Decode(Input(c.dt, "[2]", c.bad), &r).ok()) << c.dt;
  }
  InferRequest r;
  ASSERT_TRUE(Decode(Input("UINT64", "[1]", "[18446744073709551615]"), &r).ok());
  EXPECT_EQ(r.inputs[0].values<uint64_t>()[0], 18446744073709551615ULL);
}

TEST(V2JsonTest, ErrorsNameTheField) {
  EXPECT_EQ(DecodeError(Input("UINT8", "[2]", "[1,300]")),
            "inputs[0].data[1]: value 300 is out of range for UINT8");
  EXPECT_EQ(DecodeError(Input("INT32", "[2]", "[1,2.5]")),
            "inputs[0].data[1]: expected an integer for INT32, got 2.5");
  EXPECT_EQ(DecodeError(Input("INT32", "[2,2]", "[1,2,3]")),
            "inputs[0]: shape [2, 2] needs 4 elements, got 3");
  EXPECT_EQ(DecodeError(Input("INT32", "[2]", "[1,2,3]")),
            "inputs[0]: shape [2] needs 2 elements, got 3");
  EXPECT_EQ(DecodeError(Input("FLOAT", "[1]", "[1]")).substr(0, 48),
            "inputs[0].datatype: unknown datatype 'FLOAT'; ex");
  EXPECT_EQ(DecodeError(Input("FP16", "[1]", "[1]")),
            "inputs[0]: receiving FP16 data via JSON is not supported; send it as binary data");
  EXPECT_EQ(DecodeError(Input("BF16", "[1]", "[1]")).substr(0, 33),
            "inputs[0]: receiving BF16 data vi");
  EXPECT_EQ(DecodeError(Input("BYTES", "[1]", "[1]")),
            "inputs[0].data[0]: expected a string for BYTES, got a number");
  EXPECT_EQ(DecodeError(Input("INT32", "[-1]", "[1]")),
            "inputs[0].shape[0]: expected a non-negative integer, got -1");
  EXPECT_EQ(DecodeError(Input("INT32", "[100000000000]", "[1]")).substr(0, 54),
            "inputs[0]: shape [100000000000] needs 100000000000 ele");
  EXPECT_EQ(DecodeError(R"({"inputs":[{"shape":[1],"datatype":"INT32","data":[1]}]})"),
            "inputs[0].name: required");
  EXPECT_EQ(DecodeError(R"({"inputs":{}})"), "inputs: expected an array, got an object");
  EXPECT_EQ(DecodeError(R"({})"), "inputs: required");
  EXPECT_EQ(DecodeError(R"([1])"), "request body: expected a JSON object, got an array");
  EXPECT_EQ(DecodeError(R"({"inputs":[],"parameters":{"a":[1]}})"),
            "parameters.a: expected a string, number or boolean, got an array");
  EXPECT_EQ(DecodeError("{\"inputs\": [").substr(0, 19), "malformed JSON body");
  EXPECT_EQ(DecodeError(Input("BOOL", "[1]", "[1]")),
            "inputs[0].data[0]: expected true or false for BOOL, got a number");
}

TEST(V2JsonTest, EncodesResponse) {
  InferResponse resp;
  resp.model_name = "m";
  resp.model_version = "1";
  resp.id = "abc";
  resp.parameters.Set("f", 2.0);
  Tensor t{.name = "o", .datatype = DataType::kFp32, .shape = {3}};
  float v[] = {0.1f, -2.0f, 1e30f};
  t.data = TensorData::CopyOf(v, sizeof(v));
  resp.outputs.push_back(t);
  Tensor b{.name = "s", .datatype = DataType::kBytes, .shape = {1}};
  BytesTensorBuilder bb;
  bb.Append("q\"\n");
  b.data = bb.Finish();
  resp.outputs.push_back(b);
  Tensor flag{.name = "b", .datatype = DataType::kBool, .shape = {2}};
  uint8_t fv[] = {1, 0};
  flag.data = TensorData::CopyOf(fv, 2);
  resp.outputs.push_back(flag);
  std::string out;
  size_t json_size = 0;
  bool binary = false;
  ASSERT_TRUE(EncodeV2Response(InferRequest{}, resp, &out, &json_size, &binary).ok());
  EXPECT_EQ(json_size, out.size());
  EXPECT_EQ(out,
            R"({"model_name":"m","model_version":"1","id":"abc","parameters":{"f":2.0},)"
            R"("outputs":[{"name":"o","datatype":"FP32","shape":[3],"data":[0.1,-2,1e+30]},)"
            R"({"name":"s","datatype":"BYTES","shape":[1],"data":["q\"\n"]},)"
            R"({"name":"b","datatype":"BOOL","shape":[2],"data":[true,false]}]})");
}

TEST(V2JsonTest, RefusesOutputsJsonCannotCarry) {
  InferResponse resp;
  Tensor t{.name = "h", .datatype = DataType::kFp16, .shape = {1}};
  t.data = TensorData::Allocate(2);
  resp.outputs.push_back(t);
  std::string out;
  size_t json_size = 0;
  bool binary = false;
  EXPECT_EQ(EncodeV2Response(InferRequest{}, resp, &out, &json_size, &binary).code(),
            StatusCode::kInvalidArgument);
  resp.outputs[0] = Tensor{.name = "s", .datatype = DataType::kBytes, .shape = {1}};
  BytesTensorBuilder bb;
  bb.Append("\xff\xfe");
  resp.outputs[0].data = bb.Finish();
  out.clear();
  Status s = EncodeV2Response(InferRequest{}, resp, &out, &json_size, &binary);
  EXPECT_NE(s.message().find("not UTF-8"), std::string::npos);
}

// The binary extension: JSON header, then raw little-endian tensor bytes.
std::shared_ptr<const std::string> BinaryBody(const std::string& json, const std::string& bin) {
  return std::make_shared<const std::string>(json + bin);
}

TEST(V2BinaryTest, InputsBorrowTheBodyBytes) {
  std::string json =
      R"({"inputs":[{"name":"a","shape":[2],"datatype":"FP16","parameters":{"binary_data_size":4}},)"
      R"({"name":"b","shape":[1],"datatype":"INT32","data":[7]},)"
      R"({"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}}]})";
  std::string bin("\x00\x3c\x00\x40", 4);                  // FP16 1.0, 2.0
  bin += std::string("\x02\0\0\0hi\x01\0\0\0\xff", 11);  // BYTES "hi", "\xff"
  auto body = BinaryBody(json, bin);
  InferRequest r;
  Status s = DecodeV2Request(body, json.size(), &r);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(r.inputs.size(), 3u);
  EXPECT_EQ(r.inputs[0].datatype, DataType::kFp16);
  EXPECT_EQ(r.inputs[0].data.data(), reinterpret_cast<const std::byte*>(body->data()) + json.size());
  EXPECT_EQ(r.inputs[0].parameters.Find("binary_data_size"), nullptr);
  EXPECT_EQ(r.inputs[1].values<int32_t>()[0], 7);
  std::vector<std::string> got;
  ForEachBytesElement(r.inputs[2].data, [&](std::string_view e) { got.emplace_back(e); });
  EXPECT_EQ(got, (std::vector<std::string>{"hi", "\xff"}));
}

TEST(V2BinaryTest, SizeMismatchesAre400) {
  std::string json =
      R"({"inputs":[{"name":"a","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8}}]})";
  InferRequest r;
  Status s = DecodeV2Request(BinaryBody(json, std::string(4, 'x')), json.size(), &r);
  EXPECT_EQ(s.message(), "inputs[0]: binary_data_size is 8 but only 4 bytes of the binary section remain");
  r = InferRequest{};
  s = DecodeV2Request(BinaryBody(json, std::string(10, 'x')), json.size(), &r);
  EXPECT_EQ(s.message(), "the binary section has 2 bytes beyond what the inputs' binary_data_size declare");
  std::string wrong =
      R"({"inputs":[{"name":"a","shape":[3],"datatype":"INT32","parameters":{"binary_data_size":8}}]})";
  r = InferRequest{};
  s = DecodeV2Request(BinaryBody(wrong, std::string(8, 'x')), wrong.size(), &r);
  EXPECT_EQ(s.message(), "inputs[0]: tensor 'a': shape [3] of INT32 needs 12 bytes, got 8");
  r = InferRequest{};
  s = DecodeV2Request(BinaryBody(json, std::string(8, 'x')), json.size() + 100, &r);
  EXPECT_NE(s.message().find("Inference-Header-Content-Length is"), std::string::npos);
  r = InferRequest{};
  s = DecodeV2Request(BinaryBody(json, std::string(8, '\0')), std::nullopt, &r);
  EXPECT_NE(s.message().find("need an Inference-Header-Content-Length"), std::string::npos);
  std::string none = R"({"inputs":[{"name":"a","shape":[2],"datatype":"INT32"}]})";
  r = InferRequest{};
  EXPECT_EQ(DecodeV2Request(none, &r).message(),
            "inputs[0].data: required (or parameters.binary_data_size for data in the binary "
            "section)");
}

TEST(V2BinaryTest, OutputsInBinaryWhenAskedWithPerOutputOverride) {
  InferResponse resp;
  resp.model_name = "m";
  Tensor a{.name = "a", .datatype = DataType::kInt32, .shape = {2}};
  int32_t av[] = {1, -1};
  a.data = TensorData::CopyOf(av, 8);
  Tensor h{.name = "h", .datatype = DataType::kFp16, .shape = {1}};
  uint16_t hv = 0x3c00;
  h.data = TensorData::CopyOf(&hv, 2);
  resp.outputs = {a, h};
  InferRequest req;
  req.parameters.Set("binary_data_output", true);
  req.outputs = {{"a", {}}, {"h", {}}};
  req.outputs[0].parameters.Set("binary_data", false);
  std::string body;
  size_t json_size = 0;
  bool binary = false;
  ASSERT_TRUE(EncodeV2Response(req, resp, &body, &json_size, &binary).ok());
  std::string header = body.substr(0, json_size);
  EXPECT_NE(header.find(R"("name":"a","datatype":"INT32","shape":[2],"data":[1,-1])"),
            std::string::npos) << header;
  EXPECT_NE(header.find(R"("name":"h","datatype":"FP16","shape":[1],"parameters":{"binary_data_size":2}})"),
            std::string::npos) << header;
  EXPECT_EQ(body.substr(json_size), std::string("\x00\x3c", 2));
}

TEST(JsonWriterTest, EscapesAndErrors) {
  EXPECT_EQ(ErrorJson("a\"b\x01"), R"({"error":"a\"b\u0001"})");
  EXPECT_EQ(HttpStatusFor(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnimplemented), 501);
}

}  // namespace
}  // namespace quiver
