// PythonRuntime with real worker processes (the quiver-python-worker built beside this test):
// loading, V2 and V1 requests through shared memory, request headers, :explain, the model's own
// errors, a worker that dies being replaced, and loads that hang.
#include "runtimes/python/python_runtime.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace quiver {
namespace {

// spdlog's registry is created on first use inside libspdlog, which ThreadSanitizer does not
// see; creating it here, before any thread starts, keeps TSan from reporting its lazy start.
[[maybe_unused]] const bool kLoggingReady = (spdlog::default_logger_raw(), true);

namespace fs = std::filesystem;

// Echoes every input back doubled (numbers) or reversed (BYTES) under "<name>-out"; a request
// parameter "sleep" makes it sleep first, "fail" makes it raise.
constexpr char kModelPy[] = R"PY(
import asyncio
import time

import numpy as np
from kserve import InferOutput, InferResponse, Model
from kserve.errors import InvalidInput


class Echo(Model):
    def load(self):
        self.ready = True

    async def predict(self, payload, headers=None):
        if isinstance(payload, dict):
            if payload.get("fail"):
                raise InvalidInput("asked to fail")
            return {"predictions": [len(payload["instances"])], "name": self.name}
        params = payload.parameters or {}
        if "sleep" in params:
            await asyncio.sleep(float(params["sleep"]))
        if params.get("fail"):
            raise ValueError("boom")
        outputs = []
        for i in payload.inputs:
            x = i.as_numpy()
            if i.datatype == "BYTES":
                y = np.array([b[::-1] for b in x.ravel()], dtype=object).reshape(x.shape)
            else:
                y = x * 2
            outputs.append(InferOutput(i.name + "-out", list(y.shape), i.datatype, y))
        return InferResponse(payload.id, self.name, outputs, parameters={"seen": len(outputs)})
)PY";

class PythonRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quiver-python-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  ModelConfig WriteModel(const std::string& source, int instances = 1) {
    std::ofstream(dir_ / "model.py") << source;
    ModelConfig config;
    config.name = "echo-py";
    config.format = "custom";
    config.path = dir_;
    config.model_file = dir_ / "model.py";
    config.instance_count = instances;
    return config;
  }

  PythonRuntime runtime_{PythonRuntime::Options{QUIVER_PYTHON_WORKER_PATH, QUIVER_PYTHON_LIB_DIR}};
  fs::path dir_;
};

Tensor Fp32(std::string name, Shape shape, std::vector<float> values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kFp32;
  t.shape = std::move(shape);
  t.data = TensorData::CopyOf(values.data(), values.size() * sizeof(float));
  return t;
}

// The process ids of this process's children: the workers.
std::vector<pid_t> ChildPids() {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid == ::getpid() && state != 'Z') out.push_back(std::stoi(name));
  }
  return out;
}

TEST_F(PythonRuntimeTest, ServesV2TensorsAndV1Bodies) {
  auto model = runtime_.Load(WriteModel(kModelPy));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_TRUE((*model)->TakesV1Json());
  EXPECT_TRUE((*model)->WantsHeaders());   // predict(self, payload, headers=None)
  EXPECT_FALSE((*model)->HasExplainer());  // Model's explain() with no explainer_host

  InferRequest request;
  request.id = "r1";
  request.inputs.push_back(Fp32("x", {2, 2}, {1, 2, 3, 4.5f}));
  Tensor text;
  text.name = "t";
  text.datatype = DataType::kBytes;
  text.shape = {2};
  BytesTensorBuilder builder;
  builder.Append("abc");
  builder.Append("");
  text.data = builder.Finish();
  request.inputs.push_back(text);
  InferResponse response;
  Status s = (*model)->Execute(request, &response);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(response.outputs.size(), 2u);
  EXPECT_EQ(response.outputs[0].name, "x-out");
  EXPECT_EQ(response.outputs[0].shape, Shape({2, 2}));
  auto v = response.outputs[0].values<float>();
  EXPECT_EQ(std::vector<float>(v.begin(), v.end()), (std::vector<float>{2, 4, 6, 9}));
  std::vector<std::string> elements;
  ForEachBytesElement(response.outputs[1].data,
                      [&](std::string_view e) { elements.emplace_back(e); });
  EXPECT_EQ(elements, (std::vector<std::string>{"cba", ""}));
  ASSERT_NE(response.parameters.Find("seen"), nullptr);

  std::string answer;
  s = (*model)->PredictV1(R"({"instances":[[1],[2],[3]]})", nullptr, &answer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(answer, R"({"predictions":[3],"name":"echo-py"})");

  s = (*model)->PredictV1(R"({"instances":[],"fail":true})", nullptr, &answer);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "asked to fail");
  s = (*model)->PredictV1("{not json", nullptr, &answer);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

TEST_F(PythonRuntimeTest, LargeTensorsGrowTheSharedRegion) {
  auto model = runtime_.Load(WriteModel(kModelPy));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  for (size_t n : {size_t{10}, size_t{3} << 20, size_t{100}}) {  // 12 MB, then small again
    std::vector<float> values(n);
    for (size_t i = 0; i < n; ++i) values[i] = static_cast<float>(i % 1000);
    InferRequest request;
    request.inputs.push_back(Fp32("x", {static_cast<int64_t>(n)}, values));
    InferResponse response;
    Status s = (*model)->Execute(request, &response);
    ASSERT_TRUE(s.ok()) << s.ToString();
    auto out = response.outputs.at(0).values<float>();
    ASSERT_EQ(out.size(), n);
    EXPECT_EQ(out[n - 1], 2 * values[n - 1]);
  }
}

TEST_F(PythonRuntimeTest, AnExceptionInPredictIsA500AndTheWorkerServesOn) {
  auto model = runtime_.Load(WriteModel(kModelPy));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const std::vector<pid_t> before = ChildPids();
  InferRequest request;
  request.parameters.Set("fail", true);
  request.inputs.push_back(Fp32("x", {1}, {1}));
  InferResponse response;
  Status s = (*model)->Execute(request, &response);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.message(), "ValueError : boom");
  InferRequest ok;
  ok.inputs.push_back(Fp32("x", {1}, {1}));
  InferResponse answer;
  EXPECT_TRUE((*model)->Execute(ok, &answer).ok());
  EXPECT_EQ(ChildPids(), before);  // the same worker
}

TEST_F(PythonRuntimeTest, LoadErrorsNameTheFileAndTheException) {
  auto model = runtime_.Load(WriteModel(R"PY(
from kserve import Model

class Broken(Model):
    def load(self):
        raise RuntimeError("no weights here")
)PY"));
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("model.py"), std::string::npos)
      << model.status().message();
  EXPECT_NE(model.status().message().find("RuntimeError: no weights here"), std::string::npos)
      << model.status().message();
  EXPECT_NE(model.status().message().find("in load"), std::string::npos)
      << model.status().message();
  // No worker is left behind.
  for (int i = 0; i < 100 && !ChildPids().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(ChildPids().empty());

  auto syntax = runtime_.Load(WriteModel("def broken(:\n"));
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("SyntaxError"), std::string::npos)
      << syntax.status().message();

  auto none = runtime_.Load(WriteModel("x = 1\n"));
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("defines no model class"), std::string::npos)
      << none.status().message();

  ModelConfig missing = WriteModel(kModelPy);
  missing.model_file = dir_ / "nope.py";
  auto gone = runtime_.Load(missing);
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("does not exist"), std::string::npos);
}

TEST_F(PythonRuntimeTest, AWorkerKilledMidRequestFailsItAndIsReplaced) {
  auto model = runtime_.Load(WriteModel(kModelPy));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<pid_t> workers = ChildPids();
  ASSERT_EQ(workers.size(), 1u);

  InferRequest slow;
  slow.parameters.Set("sleep", 30.0);
  slow.inputs.push_back(Fp32("x", {1}, {1}));
  Status status;
  std::thread request([&] {
    InferResponse response;
    status = (*model)->Execute(slow, &response);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  request.join();
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_NE(status.message().find("died (signal 9: Killed)"), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("echo-py"), std::string::npos) << status.message();

  // The next request waits for the replacement and succeeds.
  InferRequest ok;
  ok.inputs.push_back(Fp32("x", {1}, {21}));
  InferResponse response;
  Status s = (*model)->Execute(ok, &response);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(response.outputs.at(0).values<float>()[0], 42.0f);
  std::vector<pid_t> now = ChildPids();
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0], workers[0]);
}

TEST_F(PythonRuntimeTest, AWorkerKilledWhileIdleIsReplacedBeforeTheNextRequest) {
  auto model = runtime_.Load(WriteModel(kModelPy, 2));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<pid_t> workers = ChildPids();
  ASSERT_EQ(workers.size(), 2u);
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  ASSERT_EQ(::kill(workers[1], SIGKILL), 0);
  // Wait until both have finished dying: the kernel closes a process's sockets when its last
  // thread exits, which takes a while for a large (e.g. ASan) address space, and only then
  // reports the exit to the parent (this test). WNOWAIT leaves reaping to the pool; ECHILD
  // means the pool has reaped it already.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto exited = [](pid_t pid) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      return errno == ECHILD;
    }
    return info.si_pid == pid;
  };
  auto alive = [&] { return !exited(workers[0]) || !exited(workers[1]); };
  while (alive() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int i = 0; i < 4; ++i) {
    InferRequest ok;
    ok.inputs.push_back(Fp32("x", {1}, {1}));
    InferResponse response;
    Status s = (*model)->Execute(ok, &response);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_EQ(ChildPids().size(), 2u);
}

TEST_F(PythonRuntimeTest, ARequestOverTheTimeoutKillsItsWorkerWhichIsReplaced) {
  ModelConfig config = WriteModel(kModelPy);
  config.parameters["timeout_ms"] = "500";
  auto model = runtime_.Load(config);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const std::vector<pid_t> before = ChildPids();
  InferRequest slow;
  slow.parameters.Set("sleep", 30.0);
  slow.inputs.push_back(Fp32("x", {1}, {1}));
  InferResponse response;
  const auto start = std::chrono::steady_clock::now();
  Status s = (*model)->Execute(slow, &response);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(s.message().find("did not answer within 500 ms and was killed"), std::string::npos)
      << s.message();
  InferRequest ok;
  ok.inputs.push_back(Fp32("x", {1}, {1}));
  InferResponse answer;
  Status next = (*model)->Execute(ok, &answer);
  EXPECT_TRUE(next.ok()) << next.ToString();
  EXPECT_NE(ChildPids(), before);

  config.parameters["timeout_ms"] = "-1";
  EXPECT_EQ(runtime_.Load(config).status().code(), StatusCode::kInvalidArgument);
}

// Reports the "x-tag" header each stage saw (preprocess, predict, postprocess) and a header
// with a non-ASCII byte, in the V1 answer or the V2 response's parameters.
constexpr char kHeaderModelPy[] = R"PY(
from kserve import InferOutput, InferResponse, Model


class Headers(Model):
    def load(self):
        self.ready = True

    def preprocess(self, payload, headers=None):
        return payload, {"pre": headers.get("x-tag")}

    async def predict(self, payload, headers=None):
        payload, seen = payload
        seen["predict"] = headers.get("x-tag")
        seen["latin1"] = headers.get("x-latin1")
        seen["count"] = len(headers)
        if isinstance(payload, dict):
            return seen
        x = payload.inputs[0].as_numpy()
        return InferResponse(payload.id, self.name, [InferOutput("y", list(x.shape), "FP32", x)],
                             parameters=seen)

    def postprocess(self, result, headers=None):
        if isinstance(result, dict):
            result["post"] = headers.get("x-tag")
        else:
            result.parameters["post"] = headers.get("x-tag")
        return result
)PY";

std::string StringParameter(const InferResponse& response, const std::string& name) {
  const auto* v = response.parameters.Find(name);
  if (v == nullptr) return "<missing>";
  const auto* s = std::get_if<std::string>(v);
  return s != nullptr ? *s : "<not a string>";
}

TEST_F(PythonRuntimeTest, HeadersReachPreprocessPredictAndPostprocess) {
  auto model = runtime_.Load(WriteModel(kHeaderModelPy));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_TRUE((*model)->WantsHeaders());
  // A repeated name keeps its last value, as KServe's dict(request.headers.items()); a byte
  // outside ASCII arrives as the latin-1 character, as Starlette decodes it.
  auto headers = std::make_shared<const RequestHeaders>(
      RequestHeaders{{"x-tag", "first"}, {"x-tag", "v\"2\""}, {"x-latin1", "caf\xe9"}});

  InferRequest request;
  request.id = "h1";
  request.inputs.push_back(Fp32("x", {1}, {7}));
  request.headers = headers;
  InferResponse response;
  Status s = (*model)->Execute(request, &response);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(StringParameter(response, "pre"), "v\"2\"");
  EXPECT_EQ(StringParameter(response, "predict"), "v\"2\"");
  EXPECT_EQ(StringParameter(response, "post"), "v\"2\"");
  EXPECT_EQ(StringParameter(response, "latin1"), "caf\xc3\xa9");  // é, as UTF-8 again
  ASSERT_NE(response.parameters.Find("count"), nullptr);
  EXPECT_EQ(std::get<int64_t>(*response.parameters.Find("count")), 2);

  std::string answer;
  s = (*model)->PredictV1(R"({"instances":[]})", headers.get(), &answer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(
      answer,
      R"({"pre":"v\"2\"","predict":"v\"2\"","latin1":"caf\u00e9","count":2,"post":"v\"2\""})");

  // Without headers (a frontend that sent none) the model gets an empty dict.
  s = (*model)->PredictV1(R"({"instances":[]})", nullptr, &answer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(answer, R"({"pre":null,"predict":null,"latin1":null,"count":0,"post":null})");
}

TEST_F(PythonRuntimeTest, AModelWhoseMethodsTakeNoHeadersDoesNotWantThem) {
  auto model = runtime_.Load(WriteModel(R"PY(
class Plain:
    def __init__(self, name):
        self.name = name

    def predict(self, payload):
        return {"predictions": payload["instances"]}
)PY"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_FALSE((*model)->WantsHeaders());
  EXPECT_FALSE((*model)->HasExplainer());
  std::string answer;
  Status s = (*model)->PredictV1(R"({"instances":[1,2]})", nullptr, &answer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(answer, R"({"predictions":[1,2]})");
}

TEST_F(PythonRuntimeTest, ExplainRunsTheModelsExplainerSyncOrAsync) {
  auto model = runtime_.Load(WriteModel(R"PY(
import asyncio
from kserve import Model


class Explained(Model):
    def load(self):
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [0]}

    async def explain(self, payload, headers=None):
        await asyncio.sleep(0)
        if payload.get("as_list"):
            return [1, 2]
        return {"explanations": [sum(payload["instances"])], "tag": headers.get("x-tag")}
)PY"));
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_TRUE((*model)->HasExplainer());
  RequestHeaders headers{{"x-tag", "e1"}};
  std::string answer;
  Status s = (*model)->ExplainV1(R"({"instances":[1,2,3]})", &headers, &answer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(answer, R"({"explanations":[6],"tag":"e1"})");
  // A list is the body as it is (not wrapped in "predictions" as a :predict answer).
  s = (*model)->ExplainV1(R"({"as_list":true})", nullptr, &answer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(answer, "[1,2]");
  s = (*model)->PredictV1(R"({"instances":[1]})", nullptr, &answer);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(answer, R"({"predictions":[0]})");

  // Without an explainer, ExplainV1 (which the server does not call then) is a 501.
  auto plain = runtime_.Load(WriteModel(kModelPy));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE((*plain)->HasExplainer());
  s = (*plain)->ExplainV1(R"({"instances":[1]})", nullptr, &answer);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented) << s.ToString();
}

// Waits (up to 10 s) until a killed child has finished exiting, so its socket is closed: the
// kernel closes it when the last thread exits, which takes a while for a large (e.g. ASan)
// address space. WNOWAIT leaves reaping to the pool; ECHILD means the pool reaped it already.
void AwaitExit(pid_t pid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno == ECHILD) return;
    } else if (info.si_pid == pid) {
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// Loads normally unless a file named "hang" is in the model's folder (its working directory);
// then load() never returns.
constexpr char kHangingModelPy[] = R"PY(
import os
import time
from kserve import Model


class Hanging(Model):
    def load(self):
        while os.path.exists("hang"):
            time.sleep(0.05)
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [os.getpid()]}
)PY";

TEST_F(PythonRuntimeTest, ALoadThatHangsIsKilledAfterTheLoadTimeout) {
  ModelConfig config = WriteModel(kHangingModelPy, 2);
  std::ofstream(dir_ / "hang") << "";
  config.parameters["load_timeout_ms"] = "1000";
  const auto start = std::chrono::steady_clock::now();
  auto model = runtime_.Load(config);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(model.status().message().find(
                "did not finish loading within 1000 ms (parameters.load_timeout_ms) and was "
                "killed"),
            std::string::npos)
      << model.status().message();
  EXPECT_NE(model.status().message().find("echo-py"), std::string::npos);
  EXPECT_GE(took, std::chrono::milliseconds(1000));
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_TRUE(ChildPids().empty());  // both workers killed and reaped

  config.parameters["load_timeout_ms"] = "-5";
  auto bad = runtime_.Load(config);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("parameters.load_timeout_ms"), std::string::npos);
}

TEST_F(PythonRuntimeTest, AReplacementThatHangsInLoadIsKilledAfterTheLoadTimeout) {
  ModelConfig config = WriteModel(kHangingModelPy);
  // The first load must fit in the timeout and the test waits it out once: scale it to how long
  // starting a worker takes here (seconds under the sanitizers or on a busy machine).
  const auto probe_start = std::chrono::steady_clock::now();
  ASSERT_TRUE(runtime_.Load(config).ok());
  const auto startup = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - probe_start);
  const int64_t timeout_ms = std::max<int64_t>(3000, 3 * startup.count());
  config.parameters["load_timeout_ms"] = std::to_string(timeout_ms);
  auto model = runtime_.Load(config);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<pid_t> workers = ChildPids();
  ASSERT_EQ(workers.size(), 1u);
  std::ofstream(dir_ / "hang") << "";
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  AwaitExit(workers[0]);  // so the request below sees it dead rather than dying under it
  std::string answer;
  // The request waits for the replacement, which never loads: it fails with the timeout.
  Status s = (*model)->PredictV1(R"({"instances":[]})", nullptr, &answer);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("did not finish loading within " + std::to_string(timeout_ms) + " ms"),
            std::string::npos)
      << s.message();
  // Once the model loads again, a later attempt (after the backoff) serves; under TSan on a
  // loaded machine the restarted worker may need tens of seconds to import.
  fs::remove(dir_ / "hang");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    s = (*model)->PredictV1(R"({"instances":[]})", nullptr, &answer);
  } while (!s.ok() && std::chrono::steady_clock::now() < deadline);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(PythonRuntimeTest, UnloadingDoesNotWaitForAReplacementStillLoading) {
  ModelConfig config = WriteModel(kHangingModelPy);
  config.parameters["load_timeout_ms"] = "600000";
  auto model = runtime_.Load(config);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<pid_t> workers = ChildPids();
  ASSERT_EQ(workers.size(), 1u);
  std::ofstream(dir_ / "hang") << "";
  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  // Wait until the maintenance thread has started the replacement (the idle check runs every
  // second), which then hangs in load().
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::vector<pid_t> now;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    now = ChildPids();
  } while ((now.empty() || now[0] == workers[0]) && std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(now.size(), 1u);
  ASSERT_NE(now[0], workers[0]);
  const auto start = std::chrono::steady_clock::now();
  (*model).reset();
  // Not the 600 s load timeout: the pool kills the loading replacement at once.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(ChildPids().empty());
}

TEST_F(PythonRuntimeTest, UnloadingStopsTheWorkers) {
  {
    auto model = runtime_.Load(WriteModel(kModelPy, 2));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ(ChildPids().size(), 2u);
  }
  EXPECT_TRUE(ChildPids().empty());
}

}  // namespace
}  // namespace quiver
