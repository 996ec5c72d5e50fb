#include "runtimes/python/worker_protocol.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace quiver::python_runtime {
namespace {

class SocketPair {
 public:
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0); }
  ~SocketPair() {
    CloseA();
    CloseB();
  }
  int a() const { return fds_[0]; }
  int b() const { return fds_[1]; }
  void CloseA() {
    if (fds_[0] >= 0) ::close(fds_[0]);
    fds_[0] = -1;
  }
  void CloseB() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

TEST(FrameTest, RoundTripsHeaderAndPayload) {
  SocketPair s;
  ASSERT_TRUE(WriteFrame(s.a(), FrameKind::kPredictV1, R"({"x":1})", "body bytes").ok());
  Frame f;
  TransportStatus t = ReadFrame(s.b(), &f);
  ASSERT_TRUE(t.ok()) << t.message;
  EXPECT_EQ(f.kind, FrameKind::kPredictV1);
  EXPECT_EQ(f.header, R"({"x":1})");
  EXPECT_EQ(f.payload, "body bytes");
}

TEST(FrameTest, PayloadLargerThanTheSocketBufferArrivesWhole) {
  SocketPair s;
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  std::thread writer([&] { EXPECT_TRUE(WriteFrame(s.a(), FrameKind::kResultV1, "{}", big).ok()); });
  Frame f;
  TransportStatus t = ReadFrame(s.b(), &f);
  writer.join();
  ASSERT_TRUE(t.ok()) << t.message;
  EXPECT_EQ(f.kind, FrameKind::kResultV1);
  EXPECT_TRUE(f.payload == big);
}

TEST(FrameTest, PeerClosingIsReportedAsClosed) {
  SocketPair s;
  s.CloseA();
  Frame f;
  EXPECT_EQ(ReadFrame(s.b(), &f).error, TransportError::kClosed);
  // Writing to a closed peer: EPIPE, without SIGPIPE killing the test.
  EXPECT_EQ(WriteFrame(s.b(), FrameKind::kLoad, "{}", {}).error, TransportError::kClosed);
}

TEST(FrameTest, PeerClosingMidFrameIsReportedAsClosed) {
  SocketPair s;
  const char partial[10] = {19, 0, 0, 0, 5, 0, 0, 0, 0, 0};
  ASSERT_EQ(::write(s.a(), partial, sizeof(partial)), 10);
  s.CloseA();
  Frame f;
  EXPECT_EQ(ReadFrame(s.b(), &f).error, TransportError::kClosed);
}

TEST(FrameTest, UnknownKindAndHugeLengthsAreMalformed) {
  {
    SocketPair s;
    char head[16] = {};
    head[0] = 7;  // between the request and answer kinds
    ASSERT_EQ(::write(s.a(), head, 16), 16);
    Frame f;
    TransportStatus t = ReadFrame(s.b(), &f);
    EXPECT_EQ(t.error, TransportError::kMalformed);
    EXPECT_NE(t.message.find("unknown frame kind 7"), std::string::npos) << t.message;
  }
  {
    SocketPair s;
    char head[16] = {};
    head[0] = 17;
    const uint32_t huge = kMaxHeaderBytes + 1;
    std::memcpy(head + 4, &huge, 4);
    ASSERT_EQ(::write(s.a(), head, 16), 16);
    Frame f;
    EXPECT_EQ(ReadFrame(s.b(), &f).error, TransportError::kMalformed);
  }
}

TEST(SharedRegionTest, BothMappingsSeeTheSameBytesAndGrowthIsShared) {
  auto region = SharedRegion::Create("test", 100);
  ASSERT_TRUE(region.ok()) << region.status().ToString();
  ASSERT_GE(region->size(), 100u);
  std::memcpy(region->data(), "hello", 5);
  // The worker's side: another mapping of the same file.
  void* peer = ::mmap(nullptr, region->size(), PROT_READ | PROT_WRITE, MAP_SHARED, region->fd(), 0);
  ASSERT_NE(peer, MAP_FAILED);
  EXPECT_EQ(std::memcmp(peer, "hello", 5), 0);
  std::memcpy(static_cast<char*>(peer) + 8, "world", 5);
  EXPECT_EQ(std::memcmp(region->data() + 8, "world", 5), 0);
  ::munmap(peer, 5);

  // The worker grows the file for large outputs and announces the size.
  const size_t old_size = region->size();
  ASSERT_EQ(::ftruncate(region->fd(), static_cast<off_t>(old_size * 4)), 0);
  ASSERT_TRUE(region->Refresh(old_size * 4).ok());
  EXPECT_EQ(region->size(), old_size * 4);
  EXPECT_EQ(std::memcmp(region->data(), "hello", 5), 0);
  region->data()[region->size() - 1] = std::byte{1};  // mapped to the end

  // An announcement larger than the file is a lie, not a reason to map past its end.
  Status lie = region->Refresh(old_size * 100);
  EXPECT_EQ(lie.code(), StatusCode::kInternal);

  ASSERT_TRUE(region->Reserve(old_size * 10).ok());
  EXPECT_GE(region->size(), old_size * 10);
  EXPECT_EQ(std::memcmp(region->data() + 8, "world", 5), 0);
}

Tensor MakeTensor(std::string name, DataType type, Shape shape, std::string bytes) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = type;
  t.shape = std::move(shape);
  t.data = TensorData::FromString(std::move(bytes));
  return t;
}

TEST(LayoutTest, InputsStartAtAlignedOffsets) {
  std::vector<Tensor> inputs = {MakeTensor("a", DataType::kUint8, {3}, "abc"),
                                MakeTensor("b", DataType::kUint8, {0}, ""),
                                MakeTensor("c", DataType::kUint8, {100}, std::string(100, 'x'))};
  std::vector<Placement> p;
  EXPECT_EQ(LayoutInputs(inputs, &p), 192u);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].offset, 0u);
  EXPECT_EQ(p[0].nbytes, 3u);
  EXPECT_EQ(p[1].offset, 64u);
  EXPECT_EQ(p[1].nbytes, 0u);
  EXPECT_EQ(p[2].offset, 64u);
  EXPECT_EQ(p[2].nbytes, 100u);
}

TEST(InferHeaderTest, DescribesTensorsAndEscapesNames) {
  InferRequest request;
  request.id = "req-\"1\"";
  request.parameters.Set("flag", true);
  request.parameters.Set("n", int64_t{-3});
  request.parameters.Set("big", uint64_t{18446744073709551615u});
  request.parameters.Set("x", 0.5);
  request.parameters.Set("s", std::string("line\nbreak"));
  request.inputs.push_back(MakeTensor("in\\put", DataType::kFp32, {2, 2}, std::string(16, '\0')));
  request.inputs.back().parameters.Set("content_type", std::string("np"));
  request.outputs.push_back({"out", {}});
  std::vector<Placement> p;
  size_t end = LayoutInputs(request.inputs, &p);
  std::string header = EncodeInferHeader(request, p, 4096, end);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(header).get(doc), simdjson::SUCCESS) << header;
  EXPECT_EQ(uint64_t(doc["region_size"]), 4096u);
  EXPECT_EQ(uint64_t(doc["output_offset"]), 64u);
  EXPECT_EQ(std::string_view(doc["id"]), "req-\"1\"");
  EXPECT_EQ(bool(doc["parameters"]["flag"]), true);
  EXPECT_EQ(int64_t(doc["parameters"]["n"]), -3);
  EXPECT_EQ(uint64_t(doc["parameters"]["big"]), 18446744073709551615u);
  EXPECT_EQ(double(doc["parameters"]["x"]), 0.5);
  EXPECT_EQ(std::string_view(doc["parameters"]["s"]), "line\nbreak");
  simdjson::dom::element input = doc["inputs"].at(0);
  EXPECT_EQ(std::string_view(input["name"]), "in\\put");
  EXPECT_EQ(std::string_view(input["datatype"]), "FP32");
  EXPECT_EQ(int64_t(input["shape"].at(1)), 2);
  EXPECT_EQ(uint64_t(input["offset"]), 0u);
  EXPECT_EQ(uint64_t(input["nbytes"]), 16u);
  EXPECT_EQ(std::string_view(input["parameters"]["content_type"]), "np");
  EXPECT_EQ(std::string_view(doc["outputs"].at(0)["name"]), "out");
}

TEST(InferHeaderTest, CarriesHeadersOnlyWhenSetWithBytesAsLatin1) {
  InferRequest request;
  request.inputs.push_back(MakeTensor("x", DataType::kFp32, {1}, std::string(4, '\0')));
  std::vector<Placement> p;
  size_t end = LayoutInputs(request.inputs, &p);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string header = EncodeInferHeader(request, p, 4096, end);
  ASSERT_EQ(parser.parse(header).get(doc), simdjson::SUCCESS) << header;
  EXPECT_EQ(doc["headers"].error(), simdjson::NO_SUCH_FIELD) << header;

  request.headers = std::make_shared<const RequestHeaders>(RequestHeaders{
      {"x-tag", "a\"b\\c"}, {"x-bin", std::string("\x01\xff\x00z", 4)}, {"x-tag", "second"}});
  header = EncodeInferHeader(request, p, 4096, end);
  // Each byte is one code point: \u00ff for 0xff, so the header stays valid JSON (and UTF-8).
  EXPECT_NE(header.find(R"("headers":{"x-tag":"a\"b\\c","x-bin":"\u0001\u00ff\u0000z",)"
                        R"("x-tag":"second"})"),
            std::string::npos)
      << header;
  ASSERT_EQ(parser.parse(header).get(doc), simdjson::SUCCESS) << header;
  EXPECT_EQ(std::string_view(doc["inputs"].at(0)["name"]), "x");

  EXPECT_EQ(EncodeV1Header(nullptr), "{}");
  RequestHeaders v1{{"content-type", "application/json"}, {"x-caf", "caf\xe9"}};
  EXPECT_EQ(EncodeV1Header(&v1),
            R"({"headers":{"content-type":"application/json","x-caf":"caf\u00e9"}})");
  RequestHeaders none;
  EXPECT_EQ(EncodeV1Header(&none), R"({"headers":{}})");
}

TEST(InferResultTest, CopiesOutputsOutOfTheRegion) {
  std::vector<std::byte> region(256);
  const float values[] = {1.5f, -2.0f, 3.25f};
  std::memcpy(region.data() + 64, values, sizeof(values));
  // BYTES: "hi", "" as length-prefixed elements.
  const char bytes[] = {2, 0, 0, 0, 'h', 'i', 0, 0, 0, 0};
  std::memcpy(region.data() + 128, bytes, sizeof(bytes));
  auto result = ParseInferResult(
      R"({"region_size":256,"parameters":{"p":"v","n":2,"l":[1,2]},"outputs":[)"
      R"({"name":"output-0","datatype":"FP32","shape":[3],"offset":64,"nbytes":12},)"
      R"({"name":"text","datatype":"BYTES","shape":[2],"offset":128,"nbytes":10,)"
      R"("parameters":{"content_type":"str"}}]})");
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->region_size, 256u);
  InferResponse response;
  ASSERT_TRUE(CopyOutputs(*result, region.data(), region.size(), &response).ok());
  ASSERT_EQ(response.outputs.size(), 2u);
  const Tensor& f = response.outputs[0];
  EXPECT_EQ(f.name, "output-0");
  EXPECT_EQ(f.datatype, DataType::kFp32);
  EXPECT_EQ(f.shape, Shape({3}));
  ASSERT_EQ(f.values<float>().size(), 3u);
  EXPECT_EQ(f.values<float>()[2], 3.25f);
  // A copy: the region may be reused by the next request at once.
  region[64] = std::byte{0};
  EXPECT_EQ(f.values<float>()[0], 1.5f);
  const Tensor& t = response.outputs[1];
  std::vector<std::string> elements;
  ForEachBytesElement(t.data, [&](std::string_view e) { elements.emplace_back(e); });
  EXPECT_EQ(elements, (std::vector<std::string>{"hi", ""}));
  ASSERT_NE(t.parameters.Find("content_type"), nullptr);
  ASSERT_NE(response.parameters.Find("p"), nullptr);
  EXPECT_EQ(std::get<std::string>(*response.parameters.Find("p")), "v");
  EXPECT_EQ(std::get<int64_t>(*response.parameters.Find("n")), 2);
  EXPECT_EQ(std::get<std::string>(*response.parameters.Find("l")), "[1,2]");
}

TEST(InferResultTest, RejectsOutputsOutsideTheRegionOrOfTheWrongSize) {
  std::vector<std::byte> region(128);
  struct Case {
    const char* output;
    const char* expected;
  };
  const Case cases[] = {
      {R"({"name":"o","datatype":"FP32","shape":[4],"offset":120,"nbytes":16})", "outside"},
      {R"({"name":"o","datatype":"FP32","shape":[4],"offset":18446744073709551615,"nbytes":16})",
       "outside"},
      {R"({"name":"o","datatype":"FP32","shape":[4],"offset":0,"nbytes":12})", "'o'"},
      {R"({"name":"o","datatype":"BYTES","shape":[1],"offset":0,"nbytes":3})", "'o'"},
      {R"({"name":"o","datatype":"FP8","shape":[1],"offset":0,"nbytes":1})", "unknown datatype"},
      {R"({"name":"o","datatype":"FP32","shape":[-1],"offset":0,"nbytes":4})", "shape"},
      {R"({"name":"o","datatype":"FP32","shape":[1]})", "offset"},
  };
  for (const Case& c : cases) {
    std::string header = std::string(R"({"region_size":128,"outputs":[)") + c.output + "]}";
    auto result = ParseInferResult(header);
    Status status = result.status();
    if (result.ok()) {
      InferResponse response;
      status = CopyOutputs(*result, region.data(), region.size(), &response);
    }
    EXPECT_EQ(status.code(), StatusCode::kInternal) << c.output;
    EXPECT_NE(status.message().find(c.expected), std::string::npos)
        << c.output << ": " << status.message();
  }
  EXPECT_FALSE(ParseInferResult("not json").ok());
  EXPECT_FALSE(ParseInferResult(R"({"outputs":[]})").ok());  // no region_size
}

TEST(ErrorTest, KeepsTheCodesAModelCanChoose) {
  EXPECT_EQ(ParseError(R"({"code":"INVALID_ARGUMENT","message":"bad"})").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseError(R"({"code":"UNIMPLEMENTED","message":"no"})").code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(ParseError(R"({"code":"UNAVAILABLE","message":"later"})").code(),
            StatusCode::kUnavailable);
  Status s = ParseError(R"({"code":"INTERNAL","message":"ValueError : boom"})");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "ValueError : boom");
  EXPECT_EQ(ParseError(R"({"code":"WHATEVER","message":"m"})").code(), StatusCode::kInternal);
  EXPECT_EQ(ParseError("garbage").code(), StatusCode::kInternal);
}

TEST(LoadHeaderTest, CarriesTheConfigAndReadyCarriesMetadata) {
  ModelConfig config;
  config.name = "m";
  config.format = "sklearn";
  config.path = "/models/m";
  config.model_file = "/models/m/model.joblib";
  config.parameters["method"] = "predict_proba";
  std::string header = EncodeLoadHeader(config);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(header).get(doc), simdjson::SUCCESS) << header;
  EXPECT_EQ(std::string_view(doc["format"]), "sklearn");
  EXPECT_EQ(std::string_view(doc["model_file"]), "/models/m/model.joblib");
  EXPECT_EQ(std::string_view(doc["parameters"]["method"]), "predict_proba");

  auto ready = ParseReady(
      R"({"platform":"sklearn","inputs":[{"name":"input-0","datatype":"FP64","shape":[-1,4]}],)"
      R"("outputs":[{"name":"output-0","datatype":"INT64","shape":[-1]}]})");
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(ready->platform, "sklearn");
  ASSERT_EQ(ready->inputs.size(), 1u);
  EXPECT_EQ(ready->inputs[0].shape, Shape({-1, 4}));
  ASSERT_EQ(ready->outputs.size(), 1u);
  EXPECT_EQ(ready->outputs[0].datatype, DataType::kInt64);
  EXPECT_FALSE(ready->wants_headers);  // absent: false
  EXPECT_FALSE(ready->has_explainer);
  auto flags = ParseReady(R"({"platform":"","inputs":[],"outputs":[],"headers":true,)"
                          R"("explain":true})");
  ASSERT_TRUE(flags.ok()) << flags.status().ToString();
  EXPECT_TRUE(flags->wants_headers);
  EXPECT_TRUE(flags->has_explainer);
  EXPECT_FALSE(ParseReady(R"({"inputs":[{"name":"x","datatype":"NOPE"}]})").ok());
}

}  // namespace
}  // namespace quiver::python_runtime
