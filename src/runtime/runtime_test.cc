#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "runtime/builtin_models.h"
#include "runtime/runtime_registry.h"
#include "runtime/validate.h"

namespace quiver {
namespace {

Tensor Int32Tensor(std::string name, Shape shape, const std::vector<int32_t>& v) {
  Tensor t{.name = std::move(name), .datatype = DataType::kInt32, .shape = std::move(shape)};
  t.data = TensorData::CopyOf(v.data(), v.size() * 4);
  return t;
}

std::unique_ptr<Model> LoadBuiltin(const std::string& format,
                                   std::map<std::string, std::string> params = {}) {
  BuiltinRuntime rt;
  ModelConfig c;
  c.name = format;
  c.format = format;
  c.parameters = std::move(params);
  auto m = rt.Load(c);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

TEST(BuiltinTest, EchoReturnsInputsWithParameters) {
  auto echo = LoadBuiltin("echo");
  InferRequest req;
  req.parameters.Set("p", std::string("v"));
  req.inputs.push_back(Int32Tensor("a", {1, 2}, {1, 2}));
  req.inputs[0].parameters.Set("q", int64_t{7});
  req.inputs.push_back(Int32Tensor("b", {1}, {9}));
  InferResponse resp;
  ASSERT_TRUE(echo->Execute(req, &resp).ok());
  ASSERT_EQ(resp.outputs.size(), 2u);
  EXPECT_EQ(resp.outputs[0].name, "output-0");
  EXPECT_EQ(resp.outputs[1].name, "output-1");
  EXPECT_EQ(resp.outputs[0].shape, (Shape{1, 2}));
  EXPECT_EQ(resp.outputs[0].values<int32_t>()[1], 2);
  EXPECT_EQ(resp.outputs[0].parameters.GetInt("q"), 7);
  ASSERT_NE(resp.parameters.Find("p"), nullptr);
  // Zero copy: the output shares the input's bytes.
  EXPECT_EQ(resp.outputs[1].data.data(), req.inputs[1].data.data());
}

TEST(BuiltinTest, AddSubComputesSumAndDifference) {
  auto m = LoadBuiltin("add_sub");
  std::vector<int32_t> a(16), b(16);
  for (int i = 0; i < 16; ++i) {
    a[i] = i;
    b[i] = 2 * i + 1;
  }
  a[15] = INT32_MAX;
  InferRequest req;
  req.model_name = "add_sub";
  req.inputs = {Int32Tensor("INPUT0", {1, 16}, a), Int32Tensor("INPUT1", {1, 16}, b)};
  ASSERT_TRUE(CheckRequest(m->metadata(), req).ok());
  InferResponse resp;
  ASSERT_TRUE(m->Execute(req, &resp).ok());
  auto sum = resp.outputs[0].values<int32_t>();
  auto diff = resp.outputs[1].values<int32_t>();
  EXPECT_EQ(sum[3], 3 + 7);
  EXPECT_EQ(diff[3], 3 - 7);
  EXPECT_EQ(sum[15], INT32_MIN + 30);  // wraps, never UB
}

TEST(BuiltinTest, SleepTakesItsTimePerExecution) {
  auto m = LoadBuiltin("sleep", {{"sleep_us", "20000"}, {"features", "2"}});
  EXPECT_EQ(m->metadata().inputs[0].shape, (Shape{-1, 2}));
  EXPECT_FALSE(m->CanRunInline(InferRequest{}));
  InferRequest req;
  Tensor t{.name = "INPUT0", .datatype = DataType::kFp32, .shape = {3, 2}};
  std::vector<float> v = {1, 2, 3, 4, 5, 6};
  t.data = TensorData::CopyOf(v.data(), 24);
  req.inputs.push_back(t);
  InferResponse resp;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(m->Execute(req, &resp).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
  EXPECT_EQ(resp.outputs[0].name, "OUTPUT0");
  EXPECT_EQ(resp.outputs[0].values<float>()[5], 6.0f);
}

TEST(BuiltinTest, SleepRejectsBadParameters) {
  BuiltinRuntime rt;
  ModelConfig c;
  c.format = "sleep";
  c.parameters = {{"sleep_us", "abc"}};
  auto m = rt.Load(c);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(), "parameters.sleep_us: expected an integer, got 'abc'");
}

TEST(ValidateTest, NamesWhatIsWrong) {
  auto m = LoadBuiltin("add_sub");
  InferRequest req;
  req.model_name = "add_sub";
  req.inputs = {Int32Tensor("INPUT0", {1, 16}, std::vector<int32_t>(16))};
  EXPECT_EQ(CheckRequest(m->metadata(), req).message(),
            "missing input 'INPUT1' for model 'add_sub'");
  req.inputs.push_back(Int32Tensor("INPUT1", {2, 8}, std::vector<int32_t>(16)));
  EXPECT_EQ(CheckRequest(m->metadata(), req).message(),
            "input 'INPUT1': expected shape [-1, 16], got [2, 8]");
  req.inputs[1] = Int32Tensor("INPUT2", {1, 16}, std::vector<int32_t>(16));
  EXPECT_EQ(CheckRequest(m->metadata(), req).message(),
            "unexpected input 'INPUT2' for model 'add_sub'; it takes: INPUT0, INPUT1");
  req.inputs[1] = Int32Tensor("INPUT1", {1, 16}, std::vector<int32_t>(16));
  req.inputs[1].datatype = DataType::kUint32;
  EXPECT_EQ(CheckRequest(m->metadata(), req).message(),
            "input 'INPUT1': expected datatype INT32, got UINT32");
  req.inputs[1].datatype = DataType::kInt32;
  req.outputs.push_back({"OUTPUT9", {}});
  EXPECT_EQ(CheckRequest(m->metadata(), req).message(),
            "unexpected output 'OUTPUT9' requested from model 'add_sub'; it has: OUTPUT0, OUTPUT1");
  req.outputs[0].name = "OUTPUT1";
  EXPECT_TRUE(CheckRequest(m->metadata(), req).ok());
  InferResponse resp;
  ASSERT_TRUE(m->Execute(req, &resp).ok());
  ASSERT_TRUE(SelectOutputs(req, &resp).ok());
  ASSERT_EQ(resp.outputs.size(), 1u);
  EXPECT_EQ(resp.outputs[0].name, "OUTPUT1");
}

TEST(ValidateTest, DuplicateInputNames) {
  auto m = LoadBuiltin("echo");
  InferRequest req;
  req.inputs = {Int32Tensor("a", {1}, {1}), Int32Tensor("a", {1}, {2})};
  EXPECT_EQ(CheckRequest(m->metadata(), req).message(), "inputs[1]: duplicate input name 'a'");
  req.inputs.pop_back();
  req.outputs = {{"output-0", {}}, {"output-0", {}}};
  EXPECT_EQ(CheckRequest(m->metadata(), req).message(),
            "outputs[1]: output 'output-0' is requested twice");
}

TEST(RegistryTest, UnknownFormatAndMissingPlugin) {
  RuntimeRegistry reg({"/nonexistent-dir"});
  auto builtin = reg.Get("echo");
  ASSERT_TRUE(builtin.ok());
  EXPECT_EQ((*builtin)->name(), "builtin");
  auto unknown = reg.Get("tensorflow");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown model format 'tensorflow'"),
            std::string::npos);
  auto missing = reg.Get("pytorch");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "runtime plugin quiver-torchscript.so not found (looked in /nonexistent-dir)");
  EXPECT_EQ(RuntimeRegistry::PluginForFormat("sklearn"), "python");
}

}  // namespace
}  // namespace quiver
