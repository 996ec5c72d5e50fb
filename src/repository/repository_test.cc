#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "repository/model_config.h"
#include "repository/model_repository.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("quiver_repo_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((path_ / rel).parent_path());
    std::ofstream(path_ / rel) << text;
  }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(ModelConfigTest, DetectsFormatFromFiles) {
  TempDir d;
  d.Write("m/model.bst", "x");
  auto c = ReadModelConfig(d.path() / "m", "m");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->format, "xgboost");
  EXPECT_EQ(c->model_file.filename(), "model.bst");
  for (auto [file, format] : std::vector<std::pair<std::string, std::string>>{
           {"a.pt", "pytorch"}, {"a.onnx", "onnx"}, {"a.joblib", "sklearn"},
           {"a.pkl", "sklearn"}, {"a.pickle", "sklearn"}, {"a.ubj", "xgboost"},
           {"a.json", "xgboost"}}) {
    TempDir e;
    e.Write("m/" + file, "x");
    auto r = ReadModelConfig(e.path() / "m", "m");
    ASSERT_TRUE(r.ok()) << file;
    EXPECT_EQ(r->format, format) << file;
  }
}

TEST(ModelConfigTest, PathsAreAbsoluteWhenTheFolderIsGivenRelative) {
  TempDir d;
  d.Write("m/model.bst", "x");
  d.Write("c/config.yaml", "model_file: weights.bst\nformat: xgboost\n");
  d.Write("c/weights.bst", "x");
  fs::path cwd = fs::current_path();
  fs::current_path(d.path());
  auto detected = ReadModelConfig("m", "m");
  auto configured = ReadModelConfig("c", "c");
  fs::current_path(cwd);
  ASSERT_TRUE(detected.ok()) << detected.status().ToString();
  ASSERT_TRUE(configured.ok()) << configured.status().ToString();
  EXPECT_EQ(detected->model_file, d.path() / "m" / "model.bst");
  EXPECT_EQ(configured->model_file, d.path() / "c" / "weights.bst");
  EXPECT_TRUE(detected->path.is_absolute());
}

TEST(ModelConfigTest, DetectionErrorsNameTheProblem) {
  TempDir d;
  d.Write("empty/readme.txt", "x");
  auto c = ReadModelConfig(d.path() / "empty", "empty");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("no model file in"), std::string::npos);
  d.Write("two/a.json", "x");
  d.Write("two/b.json", "x");
  c = ReadModelConfig(d.path() / "two", "two");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("expected exactly one xgboost model file"),
            std::string::npos)
      << c.status().message();
  d.Write("mixed/a.json", "x");
  d.Write("mixed/b.onnx", "x");
  c = ReadModelConfig(d.path() / "mixed", "mixed");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("several formats"), std::string::npos);
  c = ReadModelConfig(d.path() / "nope", "nope");
  EXPECT_EQ(c.status().code(), StatusCode::kNotFound);
}

TEST(ModelConfigTest, ParsesConfigYaml) {
  TempDir d;
  d.Write("m/config.yaml", R"(
format: sleep
version: "3"
instance_count: 4
inline_execution: false
inputs:
  - {name: INPUT0, datatype: FP32, shape: [-1, 8]}
outputs:
  - name: OUTPUT0
    datatype: FP32
    shape: [-1, 8]
parameters:
  sleep_us: 500
)");
  auto c = ReadModelConfig(d.path() / "m", "m");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->format, "sleep");
  EXPECT_EQ(c->version, "3");
  EXPECT_EQ(c->instance_count, 4);
  EXPECT_EQ(c->inline_execution, false);
  ASSERT_EQ(c->inputs.size(), 1u);
  EXPECT_EQ(c->inputs[0].shape, (Shape{-1, 8}));
  EXPECT_EQ(c->outputs[0].name, "OUTPUT0");
  EXPECT_EQ(c->parameters.at("sleep_us"), "500");
}

TEST(ModelConfigTest, YamlErrorsNameTheField) {
  auto err = [](const std::string& yaml) {
    auto c = ParseModelConfigYaml(yaml, "/tmp/m", "m");
    EXPECT_FALSE(c.ok()) << yaml;
    return c.status().message();
  };
  EXPECT_EQ(err("instance_count: 0"),
            "config.yaml: instance_count: must be between 1 and 256, got 0");
  EXPECT_EQ(err("instance_count: many"),
            "instance_count: expected an integer, got 'many'");
  EXPECT_EQ(err("colour: red").substr(0, 35), "config.yaml: unknown field 'colour'");
  EXPECT_EQ(err("format: tensorflow").substr(0, 56),
            "config.yaml: format: unknown format 'tensorflow'; known ");
  EXPECT_EQ(err("inputs: [{name: a, datatype: FP99}]"),
            "config.yaml: inputs[0].datatype: unknown datatype 'FP99'");
  EXPECT_EQ(err("inputs: [{name: a, shape: [-2]}]"),
            "config.yaml: inputs[0].shape[0]: must be -1 (variable) or >= 0, got -2");
  EXPECT_EQ(err("a: [").substr(0, 36), "config.yaml: malformed YAML at line ");
  EXPECT_EQ(err("name: other"),
            "config.yaml: name: 'other' differs from the model's name 'm' (the folder's name)");
}

TEST(RepositoryTest, FailedModelsAreReportedOthersServe) {
  RuntimeRegistry registry({"/nonexistent"});
  ModelRepository repo(&registry);
  ModelConfig echo;
  echo.name = "echo";
  echo.format = "echo";
  repo.Declare("echo", echo);
  ModelConfig torch;
  torch.name = "torch";
  torch.format = "pytorch";
  repo.Declare("torch", torch);
  repo.Declare("broken", StatusOr<ModelConfig>(InvalidArgument("no model file in /x")));
  EXPECT_FALSE(repo.Ready(false));  // still loading
  repo.LoadAll();
  EXPECT_TRUE(repo.Ready(false));
  EXPECT_FALSE(repo.Ready(true));
  EXPECT_EQ(repo.Find("echo")->state, ModelState::kReady);
  auto t = repo.Find("torch");
  EXPECT_EQ(t->state, ModelState::kFailed);
  EXPECT_NE(t->reason.find("quiver-torchscript.so not found"), std::string::npos) << t->reason;
  EXPECT_EQ(repo.Find("broken")->reason, "no model file in /x");
  EXPECT_EQ(repo.Find("missing"), nullptr);
  EXPECT_EQ(repo.List().size(), 3u);
}

class CountingJob : public InferJob {
 public:
  CountingJob(std::atomic<int>* done, std::atomic<int>* failed) : done_(done), failed_(failed) {}
  void Complete(Status status, InferResponse response) override {
    if (!status.ok() || response.outputs.size() != 1) failed_->fetch_add(1);
    done_->fetch_add(1);
  }

 private:
  std::atomic<int>* done_;
  std::atomic<int>* failed_;
};

TEST(ServableModelTest, InstancesRunInParallelAndDrainOnDestruction) {
  RuntimeRegistry registry({});
  ModelConfig c;
  c.name = "sleep";
  c.format = "sleep";
  c.instance_count = 4;
  c.parameters["sleep_us"] = "50000";
  auto model = (*registry.Get("sleep"))->Load(c);
  ASSERT_TRUE(model.ok());
  std::atomic<int> done{0}, failed{0};
  auto start = std::chrono::steady_clock::now();
  {
    ServableModel servable(c, std::move(model).value());
    for (int i = 0; i < 8; ++i) {
      auto job = std::make_unique<CountingJob>(&done, &failed);
      Tensor t{.name = "INPUT0", .datatype = DataType::kFp32, .shape = {1, 1}};
      t.data = TensorData::Allocate(4);
      job->request.inputs.push_back(t);
      servable.Submit(std::move(job));
    }
  }  // destruction waits for all 8
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(done.load(), 8);
  EXPECT_EQ(failed.load(), 0);
  // 8 jobs of 50 ms on 4 instances: about 100 ms, far from the 400 ms of one instance.
  EXPECT_GE(took, std::chrono::milliseconds(100));
  EXPECT_LT(took, std::chrono::milliseconds(350));
}

}  // namespace
}  // namespace quiver
