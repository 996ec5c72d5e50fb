#include "runtimes/torchscript/torchscript_runtime.h"

#include <ATen/Parallel.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

// The plugin entry point, compiled into this test from torchscript_runtime.cc.
extern "C" quiver::Runtime* QuiverCreateRuntime(int abi_version);

namespace quiver {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const fs::path kSourceDir = QUIVER_SOURCE_DIR;
const fs::path kMlp = kSourceDir / "examples" / "models" / "torchscript-mlp" / "model.pt";
const fs::path kTestdata = kSourceDir / "src" / "runtimes" / "torchscript" / "testdata";

ModelConfig ConfigFor(const fs::path& file) {
  ModelConfig config;
  config.name = "test";
  config.format = "pytorch";
  config.path = file.parent_path();
  config.model_file = file;
  return config;
}

StatusOr<std::unique_ptr<Model>> Load(const ModelConfig& config) {
  TorchScriptRuntime runtime;
  return runtime.Load(config);
}

std::unique_ptr<Model> LoadOrDie(const ModelConfig& config) {
  StatusOr<std::unique_ptr<Model>> model = Load(config);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(model).value() : nullptr;
}

std::unique_ptr<Model> LoadOrDie(const fs::path& file) { return LoadOrDie(ConfigFor(file)); }

template <typename T>
Tensor MakeTensor(std::string name, DataType type, Shape shape, const std::vector<T>& values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = type;
  t.shape = std::move(shape);
  t.data = TensorData::CopyOf(values.data(), values.size() * sizeof(T));
  return t;
}

Tensor Floats(std::string name, Shape shape, const std::vector<float>& values) {
  return MakeTensor(std::move(name), DataType::kFp32, std::move(shape), values);
}

InferRequest RequestWith(std::vector<Tensor> inputs) {
  InferRequest request;
  request.model_name = "test";
  request.inputs = std::move(inputs);
  return request;
}

StatusOr<InferResponse> Infer(Model& model, const InferRequest& request) {
  InferResponse response;
  Status status = model.Execute(request, &response);
  if (!status.ok()) return status;
  return response;
}

InferResponse RunOrDie(Model& model, const InferRequest& request) {
  StatusOr<InferResponse> response = Infer(model, request);
  EXPECT_TRUE(response.ok()) << response.status().ToString();
  return response.ok() ? std::move(response).value() : InferResponse{};
}

std::vector<double> AsDoubles(const Tensor& t) {
  std::vector<double> out;
  switch (t.datatype) {
    case DataType::kFp32:
      for (float v : t.values<float>()) out.push_back(v);
      break;
    case DataType::kFp64:
      for (double v : t.values<double>()) out.push_back(v);
      break;
    case DataType::kInt64:
      for (int64_t v : t.values<int64_t>()) out.push_back(static_cast<double>(v));
      break;
    default:
      ADD_FAILURE() << "unexpected datatype " << DataTypeName(t.datatype);
  }
  return out;
}

// A model's fixed inputs and what python3-torch returned for them, from expected.json (written
// by scripts/make_torchscript_models.py).
struct Fixture {
  fs::path file;
  std::vector<Tensor> inputs;   // named INPUT__0, INPUT__1, ...
  std::vector<Tensor> outputs;  // with the names Quiver gives them
};

Tensor TensorFromJson(simdjson::dom::element e, std::string name) {
  Tensor t;
  std::string_view type = e["datatype"].get_string();
  t.name = e["name"].error() ? std::move(name) : std::string(std::string_view(e["name"]));
  for (int64_t d : e["shape"].get_array()) t.shape.push_back(d);
  if (type == "FP32") {
    std::vector<float> values;
    for (double v : e["data"].get_array()) values.push_back(static_cast<float>(v));
    return MakeTensor(t.name, DataType::kFp32, t.shape, values);
  }
  EXPECT_EQ(type, "INT64");
  std::vector<int64_t> values;
  for (int64_t v : e["data"].get_array()) values.push_back(v);
  return MakeTensor(t.name, DataType::kInt64, t.shape, values);
}

Fixture LoadFixture(const std::string& name) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  Fixture f;
  auto error = parser.load((kTestdata / "expected.json").string()).get(doc);
  EXPECT_EQ(error, simdjson::SUCCESS) << simdjson::error_message(error);
  if (error) return f;
  simdjson::dom::element entry;
  error = doc[name].get(entry);
  EXPECT_EQ(error, simdjson::SUCCESS) << name;
  if (error) return f;
  f.file = kSourceDir / std::string(std::string_view(entry["file"]));
  for (simdjson::dom::element input : entry["inputs"].get_array()) {
    f.inputs.push_back(TensorFromJson(input, "INPUT__" + std::to_string(f.inputs.size())));
  }
  for (simdjson::dom::element output : entry["outputs"].get_array()) {
    f.outputs.push_back(TensorFromJson(output, ""));
  }
  return f;
}

// Same libtorch as python3-torch on the same file: equal but for the order of float sums.
void ExpectOutputsMatch(const InferResponse& got, const std::vector<Tensor>& want) {
  ASSERT_EQ(got.outputs.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const Tensor& g = got.outputs[i];
    const Tensor& w = want[i];
    EXPECT_EQ(g.name, w.name);
    EXPECT_EQ(g.datatype, w.datatype) << w.name;
    EXPECT_EQ(g.shape, w.shape) << w.name;
    std::vector<double> gv = AsDoubles(g);
    std::vector<double> wv = AsDoubles(w);
    ASSERT_EQ(gv.size(), wv.size()) << w.name;
    for (size_t j = 0; j < wv.size(); ++j) {
      EXPECT_NEAR(gv[j], wv[j], 1e-5 * std::max(1.0, std::fabs(wv[j]))) << w.name << " at " << j;
    }
  }
}

TEST(TorchScriptRuntimeTest, NameAndPluginFactory) {
  TorchScriptRuntime runtime;
  EXPECT_EQ(runtime.name(), "torchscript");
  std::unique_ptr<Runtime> plugin(QuiverCreateRuntime(kRuntimeAbiVersion));
  ASSERT_NE(plugin, nullptr);
  EXPECT_EQ(plugin->name(), "torchscript");
  EXPECT_EQ(QuiverCreateRuntime(kRuntimeAbiVersion + 1), nullptr);
}

class PredictionTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PredictionTest, MatchesPythonTorch) {
  Fixture f = LoadFixture(GetParam());
  ASSERT_FALSE(f.inputs.empty());
  auto model = LoadOrDie(f.file);
  ASSERT_NE(model, nullptr);
  ExpectOutputsMatch(RunOrDie(*model, RequestWith(f.inputs)), f.outputs);
}

INSTANTIATE_TEST_SUITE_P(Models, PredictionTest,
                         ::testing::Values("mlp", "cnn", "tuple", "list", "dict", "two_inputs",
                                           "optional", "optional_default", "raises"));

TEST(TorchScriptRuntimeTest, MetadataWithoutConfig) {
  auto mlp = LoadOrDie(kMlp);
  ASSERT_NE(mlp, nullptr);
  const ModelMetadata& m = mlp->metadata();
  EXPECT_EQ(m.platform, "pytorch_libtorch");
  EXPECT_FALSE(m.check_inputs);
  ASSERT_EQ(m.inputs.size(), 1u);
  EXPECT_EQ(m.inputs[0].name, "INPUT__0");
  EXPECT_EQ(m.inputs[0].datatype, DataType::kFp32);
  EXPECT_THAT(m.inputs[0].shape, ElementsAre(-1));
  ASSERT_EQ(m.outputs.size(), 1u);
  EXPECT_EQ(m.outputs[0].name, "OUTPUT__0");

  auto names = [](const std::vector<TensorSpec>& specs) {
    std::vector<std::string> out;
    for (const TensorSpec& s : specs) out.push_back(s.name);
    return out;
  };
  auto tuple = LoadOrDie(kTestdata / "tuple.pt");
  ASSERT_NE(tuple, nullptr);
  EXPECT_THAT(names(tuple->metadata().outputs), ElementsAre("OUTPUT__0", "OUTPUT__1"));
  // A list's length and a dict's keys are known only when the model runs.
  auto list = LoadOrDie(kTestdata / "list.pt");
  ASSERT_NE(list, nullptr);
  EXPECT_TRUE(list->metadata().outputs.empty());
  auto dict = LoadOrDie(kTestdata / "dict.pt");
  ASSERT_NE(dict, nullptr);
  EXPECT_TRUE(dict->metadata().outputs.empty());
  auto two = LoadOrDie(kTestdata / "two_inputs.pt");
  ASSERT_NE(two, nullptr);
  EXPECT_THAT(names(two->metadata().inputs), ElementsAre("INPUT__0", "INPUT__1"));
  auto optional = LoadOrDie(kTestdata / "optional.pt");
  ASSERT_NE(optional, nullptr);
  EXPECT_THAT(names(optional->metadata().inputs), ElementsAre("INPUT__0", "INPUT__1"));
}

TEST(TorchScriptRuntimeTest, ConfigNamesInputsAndOutputs) {
  ModelConfig config = ConfigFor(kMlp);
  config.inputs = {{"features", DataType::kFp32, {-1, 4}}};
  config.outputs = {{"scores", DataType::kFp32, {-1, 3}}};
  auto model = LoadOrDie(config);
  ASSERT_NE(model, nullptr);
  const ModelMetadata& m = model->metadata();
  EXPECT_TRUE(m.check_inputs);
  ASSERT_EQ(m.inputs.size(), 1u);
  EXPECT_EQ(m.inputs[0].name, "features");
  EXPECT_THAT(m.inputs[0].shape, ElementsAre(-1, 4));
  ASSERT_EQ(m.outputs.size(), 1u);
  EXPECT_EQ(m.outputs[0].name, "scores");

  Fixture f = LoadFixture("mlp");
  f.inputs[0].name = "features";
  f.outputs[0].name = "scores";
  ExpectOutputsMatch(RunOrDie(*model, RequestWith(f.inputs)), f.outputs);

  // The declared name is required.
  Status s = Infer(*model, RequestWith({Floats("x", {1, 4}, {1, 2, 3, 4})})).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'features'"));
}

// forward(a, b) = a - 2b: which tensor lands in which argument shows in the result.
class InputPlacementTest : public ::testing::Test {
 protected:
  void SetUp() override { fixture_ = LoadFixture("two_inputs"); }

  InferRequest Named(const std::string& first, const std::string& second, bool reversed) {
    Tensor a = fixture_.inputs[0];
    Tensor b = fixture_.inputs[1];
    a.name = first;
    b.name = second;
    return reversed ? RequestWith({b, a}) : RequestWith({a, b});
  }

  Fixture fixture_;
};

TEST_F(InputPlacementTest, ConfigOrderNotRequestOrder) {
  ModelConfig config = ConfigFor(fixture_.file);
  config.inputs = {{"left", DataType::kFp32, {-1, 3}}, {"right", DataType::kFp32, {-1, 3}}};
  auto model = LoadOrDie(config);
  ASSERT_NE(model, nullptr);
  ExpectOutputsMatch(RunOrDie(*model, Named("left", "right", /*reversed=*/true)), fixture_.outputs);
}

TEST_F(InputPlacementTest, ByTritonSuffixByArgumentNameOrByRequestOrder) {
  auto model = LoadOrDie(fixture_.file);
  ASSERT_NE(model, nullptr);
  ExpectOutputsMatch(RunOrDie(*model, Named("INPUT__0", "INPUT__1", true)), fixture_.outputs);
  ExpectOutputsMatch(RunOrDie(*model, Named("input__0", "input__1", true)), fixture_.outputs);
  ExpectOutputsMatch(RunOrDie(*model, Named("a", "b", true)), fixture_.outputs);
  ExpectOutputsMatch(RunOrDie(*model, Named("p", "q", false)), fixture_.outputs);
  // Names that place nothing: request order, so reversing the request changes the answer.
  InferResponse swapped = RunOrDie(*model, Named("p", "q", true));
  ASSERT_EQ(swapped.outputs.size(), 1u);
  EXPECT_NE(AsDoubles(swapped.outputs[0]), AsDoubles(fixture_.outputs[0]));
}

TEST(TorchScriptRuntimeTest, OptionalArgumentsMayBeLeftOut) {
  Fixture with_bias = LoadFixture("optional");
  Fixture without = LoadFixture("optional_default");
  auto model = LoadOrDie(with_bias.file);
  ASSERT_NE(model, nullptr);
  Tensor x = without.inputs[0];
  x.name = "x";
  ExpectOutputsMatch(RunOrDie(*model, RequestWith({x})), without.outputs);
  Tensor bias = with_bias.inputs[1];
  bias.name = "bias";
  Tensor x2 = with_bias.inputs[0];
  x2.name = "x";
  ExpectOutputsMatch(RunOrDie(*model, RequestWith({bias, x2})), with_bias.outputs);

  // x has no default.
  StatusOr<InferResponse> r = Infer(*model, RequestWith({bias}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("missing input 'INPUT__0'"),
                                          HasSubstr("argument 'x'"), HasSubstr("'bias'")));
}

// The identity model returns its input: every supported datatype goes in and comes out as is.
TEST(TorchScriptRuntimeTest, DatatypesRoundTrip) {
  auto model = LoadOrDie(kTestdata / "identity.pt");
  ASSERT_NE(model, nullptr);
  const std::vector<uint8_t> bytes = {0x01, 0x00, 0x01, 0x01, 0x00, 0x00, 0x3c, 0x40,
                                      0x80, 0x3f, 0xff, 0x7f, 0x12, 0x34, 0x56, 0x78};
  for (DataType type :
       {DataType::kBool, DataType::kUint8, DataType::kInt8, DataType::kInt16, DataType::kInt32,
        DataType::kInt64, DataType::kFp16, DataType::kBf16, DataType::kFp32, DataType::kFp64}) {
    const size_t size = DataTypeSize(type);
    std::vector<uint8_t> data(bytes.begin(), bytes.begin() + static_cast<long>(16 / size * size));
    if (type == DataType::kBool) data.assign(bytes.begin(), bytes.begin() + 6);  // 0s and 1s
    const int64_t count = static_cast<int64_t>(data.size() / size);
    InferResponse r = RunOrDie(*model, RequestWith({MakeTensor("x", type, {1, count}, data)}));
    ASSERT_EQ(r.outputs.size(), 1u) << DataTypeName(type);
    EXPECT_EQ(r.outputs[0].datatype, type) << DataTypeName(type);
    EXPECT_THAT(r.outputs[0].shape, ElementsAre(1, count));
    ASSERT_EQ(r.outputs[0].data.size(), data.size());
    EXPECT_EQ(std::memcmp(r.outputs[0].data.data(), data.data(), data.size()), 0)
        << DataTypeName(type);
  }
}

TEST(TorchScriptRuntimeTest, UnsupportedDatatypesAreInvalidArguments) {
  auto model = LoadOrDie(kTestdata / "identity.pt");
  ASSERT_NE(model, nullptr);
  for (DataType type : {DataType::kUint16, DataType::kUint32, DataType::kUint64}) {
    std::vector<uint8_t> data(DataTypeSize(type) * 2, 0);
    StatusOr<InferResponse> r = Infer(*model, RequestWith({MakeTensor("ids", type, {2}, data)}));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(),
                AllOf(HasSubstr("'ids'"), HasSubstr(std::string(DataTypeName(type)))));
  }
  BytesTensorBuilder builder;
  builder.Append("hello");
  Tensor text;
  text.name = "text";
  text.datatype = DataType::kBytes;
  text.shape = {1};
  text.data = builder.Finish();
  StatusOr<InferResponse> r = Infer(*model, RequestWith({text}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("'text'"), HasSubstr("BYTES")));
}

TEST(TorchScriptRuntimeTest, ScalarOutputsBecomeZeroDimensionalTensors) {
  auto model = LoadOrDie(kTestdata / "scalars.pt");
  ASSERT_NE(model, nullptr);
  InferResponse r = RunOrDie(*model, RequestWith({Floats("x", {2, 2}, {1, 2, 3, 4.5})}));
  ASSERT_EQ(r.outputs.size(), 4u);
  EXPECT_EQ(r.outputs[0].name, "OUTPUT__0");
  EXPECT_EQ(r.outputs[0].datatype, DataType::kFp32);
  EXPECT_TRUE(r.outputs[0].shape.empty());
  EXPECT_EQ(r.outputs[0].values<float>()[0], 10.5f);
  EXPECT_EQ(r.outputs[1].datatype, DataType::kInt64);
  EXPECT_EQ(r.outputs[1].values<int64_t>()[0], 2);
  EXPECT_EQ(r.outputs[2].datatype, DataType::kFp64);
  EXPECT_EQ(r.outputs[2].values<double>()[0], 2.5);
  EXPECT_EQ(r.outputs[3].name, "OUTPUT__3");
  EXPECT_EQ(r.outputs[3].datatype, DataType::kBool);
  EXPECT_EQ(r.outputs[3].values<uint8_t>()[0], 1);
}

TEST(TorchScriptRuntimeTest, ConfigNamesTupleOutputsByPosition) {
  Fixture f = LoadFixture("tuple");
  ModelConfig config = ConfigFor(f.file);
  config.outputs = {{"sum", DataType::kFp32, {-1}}, {"argmax", DataType::kInt64, {-1}}};
  auto model = LoadOrDie(config);
  ASSERT_NE(model, nullptr);
  f.outputs[0].name = "sum";
  f.outputs[1].name = "argmax";
  ExpectOutputsMatch(RunOrDie(*model, RequestWith(f.inputs)), f.outputs);

  config.outputs.pop_back();
  auto one = LoadOrDie(config);
  ASSERT_NE(one, nullptr);
  StatusOr<InferResponse> r = Infer(*one, RequestWith(f.inputs));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("returned 2 outputs"), HasSubstr("1")));
}

TEST(TorchScriptRuntimeTest, ConfigSelectsDictKeys) {
  Fixture f = LoadFixture("dict");
  ModelConfig config = ConfigFor(f.file);
  config.outputs = {{"total", DataType::kFp32, {-1}}};
  auto model = LoadOrDie(config);
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(f.outputs[1].name, "total");
  ExpectOutputsMatch(RunOrDie(*model, RequestWith(f.inputs)), {f.outputs[1]});

  config.outputs = {{"mean", DataType::kFp32, {-1}}};
  auto missing = LoadOrDie(config);
  ASSERT_NE(missing, nullptr);
  StatusOr<InferResponse> r = Infer(*missing, RequestWith(f.inputs));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("'mean'"), HasSubstr("'doubled'"), HasSubstr("'total'")));
}

// A binary request may place a tensor at any byte offset.
TEST(TorchScriptRuntimeTest, MisalignedInputIsCopied) {
  Fixture f = LoadFixture("cnn");
  auto model = LoadOrDie(f.file);
  ASSERT_NE(model, nullptr);
  const Tensor& input = f.inputs[0];
  const size_t n = input.data.size();
  auto body = std::make_shared<std::vector<std::byte>>(n + 1);
  std::memcpy(body->data() + 1, input.data.data(), n);
  Tensor misaligned = input;
  misaligned.data = TensorData::Borrow(body->data() + 1, n, body);
  ExpectOutputsMatch(RunOrDie(*model, RequestWith({misaligned})), f.outputs);
}

TEST(TorchScriptRuntimeTest, ZeroRows) {
  auto model = LoadOrDie(kMlp);
  ASSERT_NE(model, nullptr);
  InferResponse r = RunOrDie(*model, RequestWith({Floats("x", {0, 4}, {})}));
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_THAT(r.outputs[0].shape, ElementsAre(0, 3));
  EXPECT_EQ(r.outputs[0].data.size(), 0u);
}

TEST(TorchScriptRuntimeTest, BadInputsAreInvalidArgumentsThatSayWhy) {
  auto model = LoadOrDie(kMlp);
  ASSERT_NE(model, nullptr);
  StatusOr<InferResponse> r = Infer(
      *model, RequestWith({Floats("a", {1, 4}, {1, 2, 3, 4}), Floats("b", {1, 4}, {1, 2, 3, 4})}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("at most 1 input"), HasSubstr("forward(Tensor x)"),
                    HasSubstr("got 2"), HasSubstr("'a', 'b'")));

  r = Infer(*model, RequestWith({}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("missing input 'INPUT__0'"), HasSubstr("got none")));

  // Bytes that disagree with the shape (the server validates too; the model must not trust it).
  r = Infer(*model, RequestWith({Floats("x", {2, 4}, {1, 2, 3, 4, 5})}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("'x'"), HasSubstr("20 bytes")));

  r = Infer(*model, RequestWith({Floats("x", {-1, 4}, {1, 2, 3, 4})}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("invalid shape"));
}

TEST(TorchScriptRuntimeTest, FailuresInForwardAreInternalErrorsWithTorchsReason) {
  auto mlp = LoadOrDie(kMlp);
  ASSERT_NE(mlp, nullptr);
  StatusOr<InferResponse> r =
      Infer(*mlp, RequestWith({Floats("x", {2, 5}, std::vector<float>(10))}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("mat1 and mat2 shapes cannot be multiplied (2x5 and 4x16)"),
                    Not(HasSubstr("Traceback")), Not(HasSubstr("\n"))));

  // A dtype the module cannot take.
  r = Infer(
      *mlp,
      RequestWith({MakeTensor("x", DataType::kInt32, {1, 4}, std::vector<int32_t>{1, 2, 3, 4})}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);

  // Raised by the model's own code.
  auto raises = LoadOrDie(kTestdata / "raises.pt");
  ASSERT_NE(raises, nullptr);
  r = Infer(*raises, RequestWith({Floats("x", {1, 2}, {1, -1})}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("ValueError: negative input"), Not(HasSubstr("\n"))));
  // And the model still works.
  EXPECT_TRUE(Infer(*raises, RequestWith({Floats("x", {1, 2}, {1, 1})})).ok());
}

TEST(TorchScriptRuntimeTest, InlineOnlyWhenConfigAsksAndOneThread) {
  const InferRequest request = RequestWith({Floats("x", {1, 4}, {1, 2, 3, 4})});
  auto model = LoadOrDie(kMlp);
  ASSERT_NE(model, nullptr);
  EXPECT_FALSE(model->CanRunInline(request));

  ModelConfig config = ConfigFor(kMlp);
  config.inline_execution = true;
  model = LoadOrDie(config);
  ASSERT_NE(model, nullptr);
  EXPECT_TRUE(model->CanRunInline(request));

  // It would start an OpenMP team on an I/O thread.
  config.parameters = {{"intra_op_threads", "2"}};
  model = LoadOrDie(config);
  ASSERT_NE(model, nullptr);
  EXPECT_FALSE(model->CanRunInline(request));
}

class BadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("torchscript_runtime_test_" +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, const std::string& content) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  fs::path dir_;
};

TEST_F(BadFileTest, MissingFileNamesTheFile) {
  const fs::path file = dir_ / "nope" / "model.pt";
  Status s = Load(ConfigFor(file)).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr(file.string()), HasSubstr("no such file")));

  s = Load(ConfigFor(dir_)).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr(dir_.string()), HasSubstr("not a file")));
}

TEST_F(BadFileTest, CorruptFilesFailWithTorchsReason) {
  std::string cnn;
  {
    std::ifstream in(kTestdata / "cnn.pt", std::ios::binary);
    cnn.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(cnn.size(), 10000u);
  const std::vector<std::pair<fs::path, std::string>> cases = {
      {Write("empty.pt", ""), "PytorchStreamReader"},
      {Write("garbage.pt", "not torchscript"), "not a ZIP archive"},
      {Write("truncated.pt", cnn.substr(0, cnn.size() / 2)), "central directory"},
      // A damaged archive: the zip's central directory is intact but its records are not.
      {Write("scrambled.pt",
             [&] {
               std::string s = cnn;
               for (size_t i = 64; i + 64 < s.size() / 2; i += 97) s[i] = static_cast<char>(~s[i]);
               return s;
             }()),
       ""},
  };
  for (const auto& [file, reason] : cases) {
    Status s = Load(ConfigFor(file)).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << file << ": " << s.ToString();
    EXPECT_THAT(s.message(), AllOf(HasSubstr(file.string()), HasSubstr(reason),
                                   Not(HasSubstr("Exception raised from")), Not(HasSubstr("\n"))));
  }
}

TEST_F(BadFileTest, NoModelFile) {
  Status s = Load(ConfigFor(fs::path())).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no TorchScript model file"));
}

TEST_F(BadFileTest, RequiredNonTensorArgument) {
  const fs::path file = kTestdata / "int_argument.pt";
  Status s = Load(ConfigFor(file)).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr(file.string()), HasSubstr("int k"), HasSubstr("not a tensor")));
}

TEST_F(BadFileTest, ConfigDeclaresTheWrongNumberOfInputs) {
  ModelConfig config = ConfigFor(kTestdata / "two_inputs.pt");
  config.inputs = {{"a", DataType::kFp32, {-1, 3}}};
  Status s = Load(config).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("declares 1 inputs"),
                                 HasSubstr("forward(Tensor a, Tensor b)"), HasSubstr("takes 2")));
  config = ConfigFor(kTestdata / "optional.pt");
  config.inputs = {
      {"a", DataType::kFp32, {-1}}, {"b", DataType::kFp32, {-1}}, {"c", DataType::kFp32, {-1}}};
  s = Load(config).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("takes 1 to 2 tensors"));
}

TEST_F(BadFileTest, BadIntraOpThreads) {
  for (const char* value : {"many", "0", "-2"}) {
    ModelConfig config = ConfigFor(kMlp);
    config.parameters = {{"intra_op_threads", value}};
    Status s = Load(config).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << value;
    EXPECT_THAT(s.message(), HasSubstr("parameters.intra_op_threads"));
  }
}

// The thread count is a per-thread setting (OpenMP): each model's instance threads run with its
// own, whatever another model on another thread uses.
TEST(TorchScriptRuntimeTest, IntraOpThreadsPerModel) {
  Fixture f = LoadFixture("cnn");
  ModelConfig config = ConfigFor(f.file);
  config.parameters = {{"intra_op_threads", "2"}};
  auto two = LoadOrDie(config);
  auto one = LoadOrDie(f.file);
  ASSERT_NE(two, nullptr);
  ASSERT_NE(one, nullptr);
  int threads_two = 0;
  int threads_one = 0;
  std::thread a([&] {
    ExpectOutputsMatch(RunOrDie(*two, RequestWith(f.inputs)), f.outputs);
    threads_two = at::get_num_threads();
  });
  std::thread b([&] {
    ExpectOutputsMatch(RunOrDie(*one, RequestWith(f.inputs)), f.outputs);
    threads_one = at::get_num_threads();
  });
  a.join();
  b.join();
  EXPECT_EQ(threads_two, 2);
  EXPECT_EQ(threads_one, 1);
}

// Concurrent Execute on shared models gives, on every thread, what one thread computed alone.
TEST(TorchScriptRuntimeTest, ConcurrentExecuteIsCorrect) {
  auto mlp = LoadOrDie(kMlp);
  auto cnn = LoadOrDie(kTestdata / "cnn.pt");
  auto dict = LoadOrDie(kTestdata / "dict.pt");
  ASSERT_NE(mlp, nullptr);
  ASSERT_NE(cnn, nullptr);
  ASSERT_NE(dict, nullptr);

  struct Case {
    Model* model;
    InferRequest request;
    InferResponse want;
  };
  std::vector<Case> cases;
  std::mt19937 rng(42);
  std::normal_distribution<float> value(0.0f, 1.0f);
  const int64_t batches[] = {1, 3, 8};
  for (int i = 0; i < 12; ++i) {
    const int64_t rows = batches[i % 3];
    Model* model = i % 3 == 0 ? mlp.get() : i % 3 == 1 ? cnn.get() : dict.get();
    Shape shape = model == cnn.get() ? Shape{rows, 1, 28, 28} : Shape{rows, 4};
    std::vector<float> x(static_cast<size_t>(ElementCount(shape)));
    for (float& v : x) v = value(rng);
    Case c{model, RequestWith({Floats("x", shape, x)}), {}};
    c.want = RunOrDie(*model, c.request);
    ASSERT_FALSE(c.want.outputs.empty());
    cases.push_back(std::move(c));
  }

  auto same = [](const InferResponse& a, const InferResponse& b) {
    if (a.outputs.size() != b.outputs.size()) return false;
    for (size_t i = 0; i < a.outputs.size(); ++i) {
      const Tensor& x = a.outputs[i];
      const Tensor& y = b.outputs[i];
      if (x.name != y.name || x.datatype != y.datatype || x.shape != y.shape ||
          x.data.size() != y.data.size() ||
          std::memcmp(x.data.data(), y.data.data(), x.data.size()) != 0) {
        return false;
      }
    }
    return true;
  };
  constexpr int kThreads = 4;
  constexpr int kIterations = 200;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        const Case& c = cases[(i * 7 + t * 5) % cases.size()];
        StatusOr<InferResponse> got = Infer(*c.model, c.request);
        if (!got.ok() || !same(*got, c.want)) ++mismatches[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace quiver
