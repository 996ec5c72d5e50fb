// Times one prediction on the example models through each XGBoost C API path and through the
// runtime's Execute, one thread, nthread=1. Each call gets a fresh input (XGBoost caches
// predictions per DMatrix, so reusing one would time the cache). Not a test; run by hand:
//   build/bin/xgboost_predict_bench [rounds]
// Prints, per path, the best of `rounds` (default 200) short rounds' averages in µs per call:
// short rounds and the minimum keep the figure close to the uncontended cost on a busy machine.
//
// Recorded on the shared 2-core development VM while other builds ran (load average 5-6), so
// 1.5-3x the quiet figures in shared/reference/measurements.md; the ranking was the same in
// every run, the batch-64 regressor figures varied by +-40%:
//   model      batch  classic  inplace+null  inplace+proxy  Execute (inplace+proxy)
//   iris           1     37.4          46.6           10.0     10.3
//   iris          64     50.2          55.5           34.1     36.1
//   regressor      1     57.5          69.1           19.7     20.0
//   regressor     64    343.5         280.0          208.9    196.1
// classic = XGDMatrixCreateFromMat + XGBoosterPredict; the runtime uses inplace+proxy.
#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtimes/xgboost/xgboost_runtime.h"

namespace quiver {
namespace {

constexpr int kInputs = 256;  // distinct inputs cycled through

void Check(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "%s failed: %s\n", what, XGBGetLastError());
    std::exit(1);
  }
}

double BestMicros(int rounds, int calls, const std::function<void(int)>& call) {
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < rounds; ++r) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) call(i);
    std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count() / calls);
  }
  return best;
}

void BenchModel(const std::filesystem::path& file, int rounds) {
  BoosterHandle booster = nullptr;
  Check(XGBoosterCreate(nullptr, 0, &booster), "XGBoosterCreate");
  Check(XGBoosterLoadModel(booster, file.c_str()), "XGBoosterLoadModel");
  Check(XGBoosterSetParam(booster, "nthread", "1"), "XGBoosterSetParam");
  bst_ulong features = 0;
  Check(XGBoosterGetNumFeature(booster, &features), "XGBoosterGetNumFeature");
  const int64_t cols = static_cast<int64_t>(features);

  XgboostRuntime runtime;
  ModelConfig config;
  config.name = file.parent_path().filename().string();
  config.model_file = file;
  auto model = runtime.Load(config);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    std::exit(1);
  }

  DMatrixHandle proxy = nullptr;
  Check(XGProxyDMatrixCreate(&proxy), "XGProxyDMatrixCreate");
  const char* config_json = R"({"type":0,"training":false,"iteration_begin":0,"iteration_end":0,)"
                            R"("strict_shape":false,"cache_id":0,"missing":NaN})";

  std::printf("%s (%lld features)\n", config.name.c_str(), static_cast<long long>(cols));
  std::printf("  %5s %10s %14s %14s %10s\n", "batch", "classic", "inplace+null", "inplace+proxy",
              "Execute");
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(2.0f, 2.0f);
  for (int64_t rows : {1, 64}) {
    std::vector<std::vector<float>> inputs(kInputs, std::vector<float>(rows * cols));
    std::vector<std::string> arrays;
    std::vector<InferRequest> requests(kInputs);
    for (int i = 0; i < kInputs; ++i) {
      for (float& v : inputs[i]) v = normal(rng);
      char buffer[160];
      std::snprintf(buffer, sizeof(buffer),
                    R"({"data":[%zu,true],"shape":[%lld,%lld],"typestr":"<f4","version":3})",
                    reinterpret_cast<size_t>(inputs[i].data()), static_cast<long long>(rows),
                    static_cast<long long>(cols));
      arrays.emplace_back(buffer);
      Tensor t;
      t.name = "input-0";
      t.datatype = DataType::kFp32;
      t.shape = {rows, cols};
      t.data = TensorData::Borrow(inputs[i].data(), inputs[i].size() * sizeof(float), nullptr);
      requests[i].inputs.push_back(std::move(t));
    }
    const int calls = rows == 1 ? 500 : 50;
    float sink = 0;

    double classic = BestMicros(rounds, calls, [&](int i) {
      DMatrixHandle m = nullptr;
      Check(XGDMatrixCreateFromMat(inputs[i % kInputs].data(), rows, cols, NAN, &m),
            "XGDMatrixCreateFromMat");
      bst_ulong len = 0;
      const float* out = nullptr;
      Check(XGBoosterPredict(booster, m, 0, 0, 0, &len, &out), "XGBoosterPredict");
      sink += out[0];
      XGDMatrixFree(m);
    });
    auto inplace = [&](DMatrixHandle m) {
      return [&, m](int i) {
        const bst_ulong* shape = nullptr;
        bst_ulong dims = 0;
        const float* out = nullptr;
        Check(XGBoosterPredictFromDense(booster, arrays[i % kInputs].c_str(), config_json, m,
                                        &shape, &dims, &out),
              "XGBoosterPredictFromDense");
        sink += out[0];
      };
    };
    double inplace_null = BestMicros(rounds, calls, inplace(nullptr));
    double inplace_proxy = BestMicros(rounds, calls, inplace(proxy));
    double execute = BestMicros(rounds, calls, [&](int i) {
      InferResponse response;
      Status s = (*model)->Execute(requests[i % kInputs], &response);
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", s.ToString().c_str());
        std::exit(1);
      }
      sink += response.outputs[0].values<float>()[0];
    });
    std::printf("  %5lld %10.1f %14.1f %14.1f %10.1f   (checksum %g)\n",
                static_cast<long long>(rows), classic, inplace_null, inplace_proxy, execute,
                static_cast<double>(sink));
  }
  XGDMatrixFree(proxy);
  XGBoosterFree(booster);
}

}  // namespace
}  // namespace quiver

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 200;
  const std::filesystem::path models =
      std::filesystem::path(QUIVER_SOURCE_DIR) / "examples" / "models";
  quiver::BenchModel(models / "xgboost-iris" / "model.json", rounds);
  quiver::BenchModel(models / "xgboost-regressor" / "model.json", rounds);
  return 0;
}
