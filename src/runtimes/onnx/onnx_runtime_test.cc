#include "runtimes/onnx/onnx_runtime.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core/utils/logger.hpp>
#include <string>
#include <thread>
#include <vector>

// The plugin entry point, compiled into this test from onnx_runtime.cc.
extern "C" quiver::Runtime* QuiverCreateRuntime(int abi_version);

namespace quiver {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kSourceDir = QUIVER_SOURCE_DIR;
const fs::path kTestdata = kSourceDir / "src" / "runtimes" / "onnx" / "testdata";
const fs::path kMlp = kSourceDir / "examples" / "models" / "onnx-mlp" / "model.onnx";

ModelConfig ConfigFor(const fs::path& file, std::map<std::string, std::string> parameters = {},
                      int instances = 1) {
  ModelConfig config;
  config.name = "test";
  config.format = "onnx";
  config.path = file.parent_path();
  config.model_file = file;
  config.parameters = std::move(parameters);
  config.instance_count = instances;
  return config;
}

std::unique_ptr<Model> LoadOrDie(const fs::path& file, int instances = 1) {
  OnnxRuntime runtime;
  StatusOr<std::unique_ptr<Model>> model = runtime.Load(ConfigFor(file, {}, instances));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(model).value() : nullptr;
}

Status LoadStatus(const fs::path& file, std::map<std::string, std::string> parameters = {}) {
  OnnxRuntime runtime;
  return runtime.Load(ConfigFor(file, std::move(parameters))).status();
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

struct Values {
  Shape shape;
  std::vector<float> data;  // integer outputs too: they are small
  DataType datatype = DataType::kFp32;
};

// Inputs of one model and what the torch module returned for them, from expected.json (written
// by scripts/make_onnx_models.py).
struct Expected {
  std::map<std::string, Values> inputs;
  std::map<std::string, Values> outputs;
};

std::map<std::string, Values> ReadTensors(simdjson::dom::object object) {
  std::map<std::string, Values> tensors;
  for (auto [name, value] : object) {
    Values& v = tensors[std::string(name)];
    for (int64_t d : value["shape"].get_array()) v.shape.push_back(d);
    for (simdjson::dom::element x : value["data"].get_array()) {
      v.data.push_back(static_cast<float>(double(x)));
    }
    std::string_view datatype;
    if (value["datatype"].get(datatype) == simdjson::SUCCESS) {
      v.datatype = ParseDataType(datatype).value_or(DataType::kBytes);
    }
  }
  return tensors;
}

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
  e.inputs = ReadTensors(entry["inputs"].get_object());
  e.outputs = ReadTensors(entry["outputs"].get_object());
  return e;
}

InferRequest RequestFor(const std::map<std::string, Values>& inputs) {
  InferRequest request;
  request.model_name = "test";
  for (const auto& [name, v] : inputs) {
    request.inputs.push_back(MakeTensor(name, DataType::kFp32, v.shape, v.data));
  }
  return request;
}

// Rows [first, first + count) of a [batch, ...] tensor.
Values Rows(const Values& v, int64_t first, int64_t count) {
  const size_t per_row = v.data.size() / static_cast<size_t>(v.shape[0]);
  Values rows;
  rows.datatype = v.datatype;
  rows.shape = v.shape;
  rows.shape[0] = count;
  rows.data.assign(v.data.begin() + static_cast<std::ptrdiff_t>(first * per_row),
                   v.data.begin() + static_cast<std::ptrdiff_t>((first + count) * per_row));
  return rows;
}

const Tensor* FindOutput(const InferResponse& response, const std::string& name) {
  for (const Tensor& t : response.outputs) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// OpenCV and torch compute in FP32 with different summation orders and fused batch norm;
// integer outputs must be exact.
void ExpectClose(const Tensor& got, const Values& want) {
  EXPECT_EQ(got.shape, want.shape) << got.name;
  ASSERT_EQ(got.datatype, want.datatype) << got.name;
  if (want.datatype == DataType::kInt64 || want.datatype == DataType::kInt32) {
    std::vector<float> values;
    if (want.datatype == DataType::kInt64) {
      for (int64_t v : got.values<int64_t>()) values.push_back(static_cast<float>(v));
    } else {
      for (int32_t v : got.values<int32_t>()) values.push_back(static_cast<float>(v));
    }
    EXPECT_EQ(values, want.data) << got.name;
    return;
  }
  ASSERT_EQ(want.datatype, DataType::kFp32) << got.name;
  auto values = got.values<float>();
  ASSERT_EQ(values.size(), want.data.size()) << got.name;
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_NEAR(values[i], want.data[i], 1e-4 * std::max(1.0f, std::fabs(want.data[i])))
        << got.name << " at " << i;
  }
}

void ExpectOutputs(const InferResponse& response, const std::map<std::string, Values>& want) {
  ASSERT_EQ(response.outputs.size(), want.size());
  for (const auto& [name, values] : want) {
    const Tensor* t = FindOutput(response, name);
    ASSERT_NE(t, nullptr) << "no output " << name;
    ExpectClose(*t, values);
  }
}

TEST(OnnxRuntimeTest, NameAndPluginFactory) {
  OnnxRuntime runtime;
  EXPECT_EQ(runtime.name(), "onnx");
  std::unique_ptr<Runtime> plugin(QuiverCreateRuntime(kRuntimeAbiVersion));
  ASSERT_NE(plugin, nullptr);
  EXPECT_EQ(plugin->name(), "onnx");
  EXPECT_EQ(QuiverCreateRuntime(kRuntimeAbiVersion + 1), nullptr);
}

TEST(OnnxRuntimeTest, MetadataComesFromTheGraph) {
  auto mlp = LoadOrDie(kMlp);
  ASSERT_NE(mlp, nullptr);
  const ModelMetadata& m = mlp->metadata();
  EXPECT_EQ(m.platform, "onnx");
  ASSERT_EQ(m.inputs.size(), 1u);
  EXPECT_EQ(m.inputs[0].name, "features");
  EXPECT_EQ(m.inputs[0].datatype, DataType::kFp32);
  EXPECT_THAT(m.inputs[0].shape, ElementsAre(-1, 16));
  ASSERT_EQ(m.outputs.size(), 2u);
  EXPECT_EQ(m.outputs[0].name, "logits");
  EXPECT_EQ(m.outputs[1].name, "probabilities");
  EXPECT_THAT(m.outputs[1].shape, ElementsAre(-1, 4));
  EXPECT_FALSE(mlp->CanRunInline(InferRequest{}));

  // The graph's own types: OpenCV computes in FP32, the runtime converts.
  auto argmax = LoadOrDie(kTestdata / "argmax.onnx");
  ASSERT_NE(argmax, nullptr);
  ASSERT_EQ(argmax->metadata().outputs.size(), 2u);
  EXPECT_EQ(argmax->metadata().outputs[0].datatype, DataType::kInt64);
  EXPECT_EQ(argmax->metadata().outputs[1].datatype, DataType::kInt32);

  auto two = LoadOrDie(kTestdata / "two_inputs.onnx");
  ASSERT_NE(two, nullptr);
  ASSERT_EQ(two->metadata().inputs.size(), 2u);
  EXPECT_EQ(two->metadata().inputs[0].name, "a");
  EXPECT_EQ(two->metadata().inputs[1].name, "b");
  ASSERT_EQ(two->metadata().outputs.size(), 3u);
  EXPECT_EQ(two->metadata().outputs[2].name, "total");
  EXPECT_THAT(two->metadata().outputs[2].shape, ElementsAre(-1));
}

class MatchesTorchTest : public ::testing::TestWithParam<std::tuple<std::string, fs::path>> {};

TEST_P(MatchesTorchTest, WholeBatchAndSingleRows) {
  const auto& [fixture, file] = GetParam();
  Expected e = LoadExpected(fixture);
  ASSERT_FALSE(e.inputs.empty());
  auto model = LoadOrDie(file);
  ASSERT_NE(model, nullptr);
  // The whole batch, then row by row and again the whole batch on the same network: OpenCV
  // re-plans the network for each new input shape.
  for (int round = 0; round < 2; ++round) {
    InferResponse response;
    Status s = model->Execute(RequestFor(e.inputs), &response);
    ASSERT_TRUE(s.ok()) << s.ToString();
    ExpectOutputs(response, e.outputs);
    if (round == 1) break;
    const int64_t rows = e.inputs.begin()->second.shape[0];
    for (int64_t r = 0; r < rows; ++r) {
      std::map<std::string, Values> inputs, outputs;
      for (const auto& [name, v] : e.inputs) inputs[name] = Rows(v, r, 1);
      for (const auto& [name, v] : e.outputs) outputs[name] = Rows(v, r, 1);
      InferResponse one;
      s = model->Execute(RequestFor(inputs), &one);
      ASSERT_TRUE(s.ok()) << s.ToString();
      ExpectOutputs(one, outputs);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, MatchesTorchTest,
    ::testing::Values(std::make_tuple("mlp", kMlp), std::make_tuple("cnn", kTestdata / "cnn.onnx"),
                      std::make_tuple("two_inputs", kTestdata / "two_inputs.onnx"),
                      std::make_tuple("argmax", kTestdata / "argmax.onnx")),
    [](const auto& info) { return std::get<0>(info.param); });

TEST(OnnxRuntimeTest, ConvertsOtherNumericInputsToFloat) {
  auto model = LoadOrDie(kTestdata / "two_inputs.onnx");
  ASSERT_NE(model, nullptr);
  InferRequest request;
  request.inputs.push_back(MakeTensor<double>("a", DataType::kFp64, {1, 4}, {0.5, 1.5, -2.0, 4.0}));
  request.inputs.push_back(MakeTensor<int64_t>("b", DataType::kInt64, {1, 4}, {1, 2, 3, -4}));
  InferResponse response;
  Status s = model->Execute(request, &response);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectOutputs(response, {{"sum", {{1, 4}, {1.5f, 3.5f, 1.0f, 0.0f}}},
                           {"product", {{1, 4}, {0.5f, 3.0f, -6.0f, -16.0f}}},
                           {"total", {{1}, {6.0f}}}});
}

// Binary-extension and gRPC inputs borrow the request's bytes, which may sit at any offset.
TEST(OnnxRuntimeTest, UnalignedInput) {
  Expected e = LoadExpected("mlp");
  const Values& features = e.inputs.at("features");
  auto body = std::make_shared<std::string>(features.data.size() * sizeof(float) + 1, '\0');
  std::memcpy(body->data() + 1, features.data.data(), features.data.size() * sizeof(float));
  InferRequest request;
  Tensor input;
  input.name = "features";
  input.shape = features.shape;
  input.data = TensorData::Borrow(body->data() + 1, body->size() - 1, body);
  request.inputs.push_back(std::move(input));
  auto model = LoadOrDie(kMlp);
  ASSERT_NE(model, nullptr);
  InferResponse response;
  Status s = model->Execute(request, &response);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectOutputs(response, e.outputs);
}

TEST(OnnxRuntimeTest, BadInputsAreInvalidArgumentNamingTheInput) {
  auto model = LoadOrDie(kTestdata / "two_inputs.onnx");
  ASSERT_NE(model, nullptr);
  const std::vector<float> four(4, 1.0f);
  auto run = [&](std::vector<Tensor> inputs) {
    InferRequest request;
    request.model_name = "two";
    request.inputs = std::move(inputs);
    InferResponse response;
    return model->Execute(request, &response);
  };
  Tensor a = MakeTensor("a", DataType::kFp32, {1, 4}, four);
  Tensor b = MakeTensor("b", DataType::kFp32, {1, 4}, four);

  Status s = run({a});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("missing input 'b'"));

  s = run({a, b, MakeTensor("c", DataType::kFp32, {1, 4}, four)});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("unexpected input 'c'"), HasSubstr("a, b")));

  s = run({a, MakeTensor("b", DataType::kFp32, {2, 2}, four)});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("input 'b'"), HasSubstr("expected shape [-1, 4]"),
                                 HasSubstr("got [2, 2]")));

  s = run({a, MakeTensor("b", DataType::kFp32, {1, 4, 1}, four)});
  EXPECT_THAT(s.message(), HasSubstr("expected shape [-1, 4]"));

  Tensor fp16 = MakeTensor<uint16_t>("b", DataType::kFp16, {1, 4}, {0, 0, 0, 0});
  s = run({a, fp16});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("input 'b'"), HasSubstr("FP16 is not supported")));

  Tensor short_data = MakeTensor("b", DataType::kFp32, {1, 4}, std::vector<float>(3, 1.0f));
  s = run({a, short_data});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("input 'b'"), HasSubstr("12 bytes")));

  s = run({MakeTensor("a", DataType::kFp32, {0, 4}, std::vector<float>{}),
           MakeTensor("b", DataType::kFp32, {0, 4}, std::vector<float>{})});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no elements"));

  // Both inputs' first dimension is the graph's "batch".
  s = run({a, MakeTensor("b", DataType::kFp32, {2, 4}, std::vector<float>(8, 1.0f))});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("input 'b'"), HasSubstr("'batch'"), HasSubstr("is 2"),
                                 HasSubstr("1 in input 'a'")));

  // The model still answers afterwards.
  EXPECT_TRUE(run({a, b}).ok());
}

TEST(OnnxRuntimeTest, UnsupportedOperatorFailsToLoadNamingIt) {
  Status s = LoadStatus(kTestdata / "topk.onnx");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              AllOf(HasSubstr("topk.onnx"), HasSubstr("model uses operator 'TopK'"),
                    HasSubstr("which the ONNX engine (OpenCV dnn 4."), HasSubstr("cannot run")));

  // An operator OpenCV has, in a form it lacks: the reason is OpenCV's.
  s = LoadStatus(kTestdata / "reduce_sum_opset13.onnx");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("operator 'ReduceSum'"), HasSubstr("cannot run"),
                                 HasSubstr("opset 11")));
}

class BadFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("onnx_runtime_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, const std::string& bytes) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  static std::string MlpBytes() {
    std::ifstream in(kMlp, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  fs::path dir_;
};

TEST_F(BadFileTest, CorruptFilesAreClearErrors) {
  const std::string mlp = MlpBytes();
  ASSERT_GT(mlp.size(), 1000u);
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"truncated.onnx", mlp.substr(0, mlp.size() / 2)},
           {"text.onnx", "this is not a model\n"},
           {"empty.onnx", ""},
           {"zeros.onnx", std::string(4096, '\0')}}) {
    Status s = LoadStatus(Write(name, bytes));
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(s.message(), AllOf(HasSubstr(name), HasSubstr("ONNX model file"))) << name;
  }
  EXPECT_THAT(LoadStatus(Write("t.onnx", mlp.substr(0, mlp.size() / 2))).message(),
              HasSubstr("not an ONNX model"));
}

// Every single-byte corruption of the model's first bytes (its structure) loads or fails
// cleanly; none crashes.
TEST_F(BadFileTest, FlippedBytesNeverCrash) {
  // OpenCV logs every node it fails to import; 200 of those would bury the test's output.
  const auto log_level =
      cv::utils::logging::setLogLevel(cv::utils::logging::LogLevel::LOG_LEVEL_SILENT);
  const std::string mlp = MlpBytes();
  int loaded = 0;
  for (size_t i = 0; i < 200 && i < mlp.size(); ++i) {
    std::string bytes = mlp;
    bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
    Status s = LoadStatus(Write("flipped.onnx", bytes));
    if (s.ok()) {
      ++loaded;
    } else {
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << "byte " << i << ": " << s.ToString();
    }
  }
  EXPECT_LT(loaded, 200);
  cv::utils::logging::setLogLevel(log_level);
}

TEST_F(BadFileTest, MissingFileDirectoryAndNoFile) {
  Status s = LoadStatus(dir_ / "missing.onnx");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("missing.onnx"), HasSubstr("does not exist")));

  fs::create_directories(dir_ / "dir.onnx");
  s = LoadStatus(dir_ / "dir.onnx");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("is a directory"));

  OnnxRuntime runtime;
  ModelConfig config = ConfigFor(kMlp);
  config.model_file.clear();
  s = runtime.Load(config).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("no ONNX model file"));
}

TEST(OnnxRuntimeTest, BadIntraOpThreads) {
  for (const std::string value : {"0", "-1", "many", "5000"}) {
    Status s = LoadStatus(kMlp, {{"intra_op_threads", value}});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << value;
    EXPECT_THAT(s.message(), HasSubstr("parameters.intra_op_threads")) << value;
  }
  EXPECT_TRUE(LoadStatus(kMlp, {{"intra_op_threads", "2"}}).ok());
  EXPECT_TRUE(LoadStatus(kMlp, {{"intra_op_threads", "1"}}).ok());
}

// Instances each hold a network; more threads than instances wait for one. Every answer is
// still the one for its own input.
TEST(OnnxRuntimeTest, ConcurrentExecuteOnSeveralInstances) {
  Expected e = LoadExpected("cnn");
  auto model = LoadOrDie(kTestdata / "cnn.onnx", /*instances=*/2);
  ASSERT_NE(model, nullptr);
  const Values& images = e.inputs.at("image");
  const Values& logits = e.outputs.at("logits");
  const int64_t rows = images.shape[0];
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        // Batches of 1 and of every row alternate, so networks also re-plan concurrently.
        const int64_t first = (t + i) % rows;
        const int64_t count = (i % 2 == 0) ? 1 : rows - first;
        InferRequest request = RequestFor({{"image", Rows(images, first, count)}});
        InferResponse response;
        if (!model->Execute(request, &response).ok() || response.outputs.size() != 1) {
          ++failures[t];
          continue;
        }
        Values want = Rows(logits, first, count);
        auto got = response.outputs[0].values<float>();
        if (response.outputs[0].shape != want.shape || got.size() != want.data.size()) {
          ++failures[t];
          continue;
        }
        for (size_t k = 0; k < got.size(); ++k) {
          if (std::fabs(got[k] - want.data[k]) > 1e-4f * std::max(1.0f, std::fabs(want.data[k]))) {
            ++failures[t];
            break;
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_THAT(failures, ElementsAre(0, 0, 0, 0));
}

}  // namespace
}  // namespace quiver
