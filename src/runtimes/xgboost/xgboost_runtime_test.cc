#include "runtimes/xgboost/xgboost_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

// The plugin entry point, compiled into this test from xgboost_runtime.cc.
extern "C" quiver::Runtime* QuiverCreateRuntime(int abi_version);

namespace quiver {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kSourceDir = QUIVER_SOURCE_DIR;
const fs::path kModels = kSourceDir / "examples" / "models";
const fs::path kTestdata = kSourceDir / "src" / "runtimes" / "xgboost" / "testdata";

ModelConfig ConfigFor(const std::string& name, const fs::path& file) {
  ModelConfig config;
  config.name = name;
  config.format = "xgboost";
  config.path = file.parent_path();
  config.model_file = file;
  return config;
}

std::unique_ptr<Model> LoadOrDie(const fs::path& file,
                                 std::map<std::string, std::string> parameters = {}) {
  XgboostRuntime runtime;
  ModelConfig config = ConfigFor("test", file);
  config.parameters = std::move(parameters);
  StatusOr<std::unique_ptr<Model>> model = runtime.Load(config);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(model).value() : nullptr;
}

template <typename T>
Tensor MakeTensor(std::string name, DataType type, Shape shape, const std::vector<T>& values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = type;
  t.shape = std::move(shape);
  t.data = TensorData::CopyOf(values.data(), values.size() * sizeof(T));
  return t;
}

InferRequest RequestWith(Tensor input) {
  InferRequest request;
  request.model_name = "test";
  request.inputs.push_back(std::move(input));
  return request;
}

std::vector<float> OutputValues(const InferResponse& response) {
  auto v = response.outputs.at(0).values<float>();
  return {v.begin(), v.end()};
}

// Rows, their predictions by python's booster.predict(xgb.DMatrix(x)), from expected.json
// (written by scripts/train_xgboost_models.py).
struct Expected {
  int64_t num_features = 0;
  std::vector<float> inputs;  // row-major
  int64_t rows = 0;
  Shape output_shape;
  std::vector<float> outputs;
};

Expected LoadExpected(const std::string& model) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  Expected e;
  auto error = parser.load((kTestdata / "expected.json").string()).get(doc);
  EXPECT_EQ(error, simdjson::SUCCESS) << simdjson::error_message(error);
  if (error) return e;
  simdjson::dom::element entry;
  error = doc[model].get(entry);
  EXPECT_EQ(error, simdjson::SUCCESS) << model;
  if (error) return e;
  e.num_features = int64_t(entry["num_features"]);
  for (simdjson::dom::element row : entry["inputs"].get_array()) {
    ++e.rows;
    for (double v : row.get_array()) e.inputs.push_back(static_cast<float>(v));
  }
  for (int64_t d : entry["output_shape"].get_array()) e.output_shape.push_back(d);
  for (double v : entry["outputs"].get_array()) e.outputs.push_back(static_cast<float>(v));
  return e;
}

// Same float32 computation as python's, so equal up to the last decimal written.
void ExpectNear(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-6 * std::max(1.0f, std::fabs(want[i]))) << "at " << i;
  }
}

TEST(XgboostRuntimeTest, NameAndPluginFactory) {
  XgboostRuntime runtime;
  EXPECT_EQ(runtime.name(), "xgboost");
  std::unique_ptr<Runtime> plugin(QuiverCreateRuntime(kRuntimeAbiVersion));
  ASSERT_NE(plugin, nullptr);
  EXPECT_EQ(plugin->name(), "xgboost");
  EXPECT_EQ(QuiverCreateRuntime(kRuntimeAbiVersion + 1), nullptr);
}

TEST(XgboostRuntimeTest, IrisMetadata) {
  auto model = LoadOrDie(kModels / "xgboost-iris" / "model.json");
  ASSERT_NE(model, nullptr);
  const ModelMetadata& m = model->metadata();
  EXPECT_EQ(m.platform, "xgboost");
  EXPECT_FALSE(m.check_inputs);
  ASSERT_EQ(m.inputs.size(), 1u);
  EXPECT_EQ(m.inputs[0].name, "input-0");
  EXPECT_EQ(m.inputs[0].datatype, DataType::kFp32);
  EXPECT_THAT(m.inputs[0].shape, ElementsAre(-1, 4));
  ASSERT_EQ(m.outputs.size(), 1u);
  EXPECT_EQ(m.outputs[0].name, "output-0");
  EXPECT_EQ(m.outputs[0].datatype, DataType::kFp32);
  EXPECT_THAT(m.outputs[0].shape, ElementsAre(-1, 3));
}

TEST(XgboostRuntimeTest, RegressorMetadata) {
  auto model = LoadOrDie(kModels / "xgboost-regressor" / "model.json");
  ASSERT_NE(model, nullptr);
  EXPECT_THAT(model->metadata().inputs.at(0).shape, ElementsAre(-1, 20));
  EXPECT_THAT(model->metadata().outputs.at(0).shape, ElementsAre(-1));
}

class PredictionTest : public ::testing::TestWithParam<std::tuple<std::string, fs::path>> {};

// FP32 and FP64 inputs give python's predictions, in python's shape.
TEST_P(PredictionTest, MatchesPythonXgboost) {
  const auto& [fixture, file] = GetParam();
  Expected e = LoadExpected(fixture);
  ASSERT_GT(e.rows, 0);
  auto model = LoadOrDie(file);
  ASSERT_NE(model, nullptr);
  Shape expected_output = e.output_shape;

  InferResponse fp32;
  ASSERT_TRUE(model
                  ->Execute(RequestWith(MakeTensor("x", DataType::kFp32, {e.rows, e.num_features},
                                                   e.inputs)),
                            &fp32)
                  .ok());
  ASSERT_EQ(fp32.outputs.size(), 1u);
  EXPECT_EQ(fp32.outputs[0].name, "output-0");
  EXPECT_EQ(fp32.outputs[0].datatype, DataType::kFp32);
  EXPECT_EQ(fp32.outputs[0].shape, expected_output);
  ExpectNear(OutputValues(fp32), e.outputs);

  std::vector<double> doubles(e.inputs.begin(), e.inputs.end());
  InferResponse fp64;
  ASSERT_TRUE(model
                  ->Execute(RequestWith(MakeTensor("input-0", DataType::kFp64,
                                                   {e.rows, e.num_features}, doubles)),
                            &fp64)
                  .ok());
  EXPECT_EQ(fp64.outputs.at(0).shape, expected_output);
  ExpectNear(OutputValues(fp64), e.outputs);
}

INSTANTIATE_TEST_SUITE_P(
    Models, PredictionTest,
    ::testing::Values(std::make_tuple("xgboost-iris", kModels / "xgboost-iris" / "model.json"),
                      std::make_tuple("xgboost-regressor",
                                      kModels / "xgboost-regressor" / "model.json"),
                      // The same iris model in XGBoost's other two file formats.
                      std::make_tuple("xgboost-iris", kTestdata / "iris.ubj"),
                      std::make_tuple("xgboost-iris", kTestdata / "iris.bst"),
                      // gblinear has no inplace prediction in XGBoost 1.7: the DMatrix path.
                      std::make_tuple("linear", kTestdata / "linear.json")));

TEST(XgboostRuntimeTest, IntegerInputsAreConvertedLikeFloats) {
  auto model = LoadOrDie(kModels / "xgboost-iris" / "model.json");
  ASSERT_NE(model, nullptr);
  std::vector<float> floats = {5, 3, 1, 0, 7, 3, 6, 2};
  InferResponse want;
  ASSERT_TRUE(
      model->Execute(RequestWith(MakeTensor("x", DataType::kFp32, {2, 4}, floats)), &want).ok());

  std::vector<int64_t> int64s(floats.begin(), floats.end());
  std::vector<int32_t> int32s(floats.begin(), floats.end());
  std::vector<uint8_t> uint8s(floats.begin(), floats.end());
  for (const Tensor& input : {MakeTensor("x", DataType::kInt64, {2, 4}, int64s),
                              MakeTensor("x", DataType::kInt32, {2, 4}, int32s),
                              MakeTensor("x", DataType::kUint8, {2, 4}, uint8s)}) {
    InferResponse got;
    Status status = model->Execute(RequestWith(input), &got);
    ASSERT_TRUE(status.ok()) << DataTypeName(input.datatype) << ": " << status.ToString();
    EXPECT_EQ(OutputValues(got), OutputValues(want)) << DataTypeName(input.datatype);
  }
}

// A binary request may place a tensor at any byte offset; XGBoost refuses misaligned data.
TEST(XgboostRuntimeTest, MisalignedInputIsCopied) {
  Expected e = LoadExpected("xgboost-iris");
  auto model = LoadOrDie(kModels / "xgboost-iris" / "model.json");
  ASSERT_NE(model, nullptr);
  std::vector<double> doubles(e.inputs.begin(), e.inputs.end());
  for (DataType type : {DataType::kFp32, DataType::kFp64}) {
    const size_t n = type == DataType::kFp32 ? e.inputs.size() * 4 : doubles.size() * 8;
    const void* src = type == DataType::kFp32 ? static_cast<const void*>(e.inputs.data())
                                              : static_cast<const void*>(doubles.data());
    auto body = std::make_shared<std::vector<std::byte>>(n + 1);
    std::memcpy(body->data() + 1, src, n);
    Tensor input;
    input.name = "x";
    input.datatype = type;
    input.shape = {e.rows, 4};
    input.data = TensorData::Borrow(body->data() + 1, n, body);
    InferResponse response;
    Status status = model->Execute(RequestWith(input), &response);
    ASSERT_TRUE(status.ok()) << status.ToString();
    ExpectNear(OutputValues(response), e.outputs);
  }
}

TEST(XgboostRuntimeTest, ZeroRowsGiveAnEmptyOutput) {
  auto iris = LoadOrDie(kModels / "xgboost-iris" / "model.json");
  auto regressor = LoadOrDie(kModels / "xgboost-regressor" / "model.json");
  ASSERT_NE(iris, nullptr);
  ASSERT_NE(regressor, nullptr);
  InferResponse response;
  ASSERT_TRUE(
      iris->Execute(RequestWith(MakeTensor("x", DataType::kFp32, {0, 4}, std::vector<float>{})),
                    &response)
          .ok());
  EXPECT_THAT(response.outputs.at(0).shape, ElementsAre(0, 3));
  EXPECT_EQ(response.outputs.at(0).data.size(), 0u);
  InferResponse response2;
  ASSERT_TRUE(
      regressor
          ->Execute(RequestWith(MakeTensor("x", DataType::kFp32, {0, 20}, std::vector<float>{})),
                    &response2)
          .ok());
  EXPECT_THAT(response2.outputs.at(0).shape, ElementsAre(0));
}

Status ExecuteStatus(Model& model, InferRequest request) {
  InferResponse response;
  return model.Execute(request, &response);
}

TEST(XgboostRuntimeTest, BadInputsAreInvalidArgumentsThatSayWhy) {
  auto model = LoadOrDie(kModels / "xgboost-iris" / "model.json");
  ASSERT_NE(model, nullptr);

  Status s = ExecuteStatus(*model, RequestWith(MakeTensor("feats", DataType::kFp32, {2, 5},
                                                          std::vector<float>(10, 1.0f))));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'feats'"), HasSubstr("expects 4 features"),
                                 HasSubstr("got 5"), HasSubstr("[2, 5]")));

  BytesTensorBuilder bytes;
  for (int i = 0; i < 4; ++i) bytes.Append("1.0");
  Tensor text;
  text.name = "x";
  text.datatype = DataType::kBytes;
  text.shape = {1, 4};
  text.data = bytes.Finish();
  s = ExecuteStatus(*model, RequestWith(text));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'x'"), HasSubstr("BYTES"), HasSubstr("FP32")));

  s = ExecuteStatus(*model, RequestWith(MakeTensor("x", DataType::kFp32, {1, 2, 4},
                                                   std::vector<float>(8, 1.0f))));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("'x'"), HasSubstr("[batch, 4]"), HasSubstr("[1, 2, 4]")));

  s = ExecuteStatus(
      *model, RequestWith(MakeTensor("x", DataType::kFp32, {4}, std::vector<float>(4, 1.0f))));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("[batch, 4]"));

  InferRequest two =
      RequestWith(MakeTensor("a", DataType::kFp32, {1, 4}, std::vector<float>(4, 1.0f)));
  two.inputs.push_back(MakeTensor("b", DataType::kFp32, {1, 4}, std::vector<float>(4, 1.0f)));
  s = ExecuteStatus(*model, two);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("exactly one input"), HasSubstr("got 2"), HasSubstr("'a', 'b'")));

  s = ExecuteStatus(*model, InferRequest{});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("got 0"));

  s = ExecuteStatus(
      *model, RequestWith(MakeTensor("x", DataType::kFp16, {1, 4}, std::vector<uint16_t>(4, 0))));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("FP16"));

  // Bytes that disagree with the shape (the server validates too; the model must not trust it).
  s = ExecuteStatus(
      *model, RequestWith(MakeTensor("x", DataType::kFp32, {2, 4}, std::vector<float>(5, 1.0f))));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("20 bytes"));
}

class BadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("xgboost_runtime_test_" +
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

  Status LoadStatus(const fs::path& file, std::map<std::string, std::string> parameters = {}) {
    XgboostRuntime runtime;
    ModelConfig config = ConfigFor("broken", file);
    config.parameters = std::move(parameters);
    return runtime.Load(config).status();
  }

  fs::path dir_;
};

TEST_F(BadFileTest, MissingFileNamesTheFile) {
  const fs::path file = dir_ / "nope" / "model.json";
  Status s = LoadStatus(file);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(file.string()));
  // XGBoost's reason, without its stack trace.
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("Stack trace")));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("\n")));
}

TEST_F(BadFileTest, CorruptFilesFailWithXgboostsReason) {
  std::string iris;
  {
    std::ifstream in(kModels / "xgboost-iris" / "model.json", std::ios::binary);
    iris.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(iris.size(), 1000u);
  const std::vector<fs::path> files = {
      Write("empty.json", ""),
      Write("garbage.json", "this is not json"),
      Write("truncated.json", iris.substr(0, iris.size() / 2)),
      Write("other.json", R"({"learner": {"attributes": {}}})"),
      Write("array.json", "[1, 2, 3]"),
      Write("garbage.ubj", std::string("{\x01\x02\x03garbage", 11)),
      Write("garbage.bst", std::string(4096, '\x7f')),
      Write("empty.bst", ""),
  };
  for (const fs::path& file : files) {
    Status s = LoadStatus(file);
    EXPECT_FALSE(s.ok()) << file;
    EXPECT_THAT(s.message(), HasSubstr(file.string()));
    EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("Stack trace"))) << s.message();
  }
}

TEST_F(BadFileTest, NoModelFile) {
  Status s = LoadStatus(fs::path());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no XGBoost model file"));
}

TEST_F(BadFileTest, BadNthread) {
  const fs::path iris = kModels / "xgboost-iris" / "model.json";
  for (const char* value : {"many", "0", "-2"}) {
    Status s = LoadStatus(iris, {{"nthread", value}});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << value;
    EXPECT_THAT(s.message(), HasSubstr("parameters.nthread"));
  }
}

InferRequest Rows(int64_t rows, int64_t features) {
  return RequestWith(MakeTensor("x", DataType::kFp32, {rows, features},
                                std::vector<float>(rows * features, 0.5f)));
}

TEST(XgboostRuntimeTest, SmallRequestsRunInline) {
  auto iris = LoadOrDie(kModels / "xgboost-iris" / "model.json");            // 60 trees
  auto regressor = LoadOrDie(kModels / "xgboost-regressor" / "model.json");  // 100 trees
  ASSERT_NE(iris, nullptr);
  ASSERT_NE(regressor, nullptr);
  EXPECT_TRUE(iris->CanRunInline(Rows(1, 4)));
  EXPECT_TRUE(iris->CanRunInline(Rows(64, 4)));
  EXPECT_FALSE(iris->CanRunInline(Rows(65, 4)));
  EXPECT_TRUE(regressor->CanRunInline(Rows(1, 20)));
  EXPECT_TRUE(regressor->CanRunInline(Rows(40, 20)));
  EXPECT_FALSE(regressor->CanRunInline(Rows(41, 20)));
}

TEST(XgboostRuntimeTest, MoreThreadsPerCall) {
#if defined(__SANITIZE_THREAD__)
  // libgomp is not instrumented: TSan reports every hand-off to its worker threads as a race.
  GTEST_SKIP() << "OpenMP teams under ThreadSanitizer";
#endif
  Expected e = LoadExpected("xgboost-regressor");
  auto model = LoadOrDie(kModels / "xgboost-regressor" / "model.json", {{"nthread", "2"}});
  ASSERT_NE(model, nullptr);
  InferResponse response;
  ASSERT_TRUE(model
                  ->Execute(RequestWith(MakeTensor("x", DataType::kFp32, {e.rows, e.num_features},
                                                   e.inputs)),
                            &response)
                  .ok());
  ExpectNear(OutputValues(response), e.outputs);
  // It would start an OpenMP team on each I/O thread.
  EXPECT_FALSE(model->CanRunInline(Rows(1, 20)));
}

// Concurrent Execute on shared models gives, on every thread, what one thread computed alone.
TEST(XgboostRuntimeTest, ConcurrentExecuteIsCorrect) {
  auto iris = LoadOrDie(kModels / "xgboost-iris" / "model.json");
  auto regressor = LoadOrDie(kModels / "xgboost-regressor" / "model.json");
  ASSERT_NE(iris, nullptr);
  ASSERT_NE(regressor, nullptr);

  struct Case {
    Model* model;
    InferRequest request;
    std::vector<float> want;
    Shape want_shape;
  };
  std::vector<Case> cases;
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> value(-3.0f, 8.0f);
  const int64_t batches[] = {1, 3, 17, 64};
  for (int i = 0; i < 16; ++i) {
    const bool use_iris = i % 2 == 0;
    Model* model = use_iris ? iris.get() : regressor.get();
    const int64_t features = use_iris ? 4 : 20;
    const int64_t rows = batches[i % 4];
    std::vector<float> x(rows * features);
    for (float& v : x) v = value(rng);
    Case c{model, RequestWith(MakeTensor("x", DataType::kFp32, {rows, features}, x)), {}, {}};
    InferResponse response;
    ASSERT_TRUE(model->Execute(c.request, &response).ok());
    c.want = OutputValues(response);
    c.want_shape = response.outputs.at(0).shape;
    cases.push_back(std::move(c));
  }

  constexpr int kThreads = 4;
  constexpr int kIterations = 300;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        const Case& c = cases[(i * 7 + t * 5) % cases.size()];
        InferResponse response;
        Status status = c.model->Execute(c.request, &response);
        if (!status.ok() || response.outputs.at(0).shape != c.want_shape ||
            OutputValues(response) != c.want) {
          ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace quiver
