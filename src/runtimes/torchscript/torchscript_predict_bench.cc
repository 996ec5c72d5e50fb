// In-process throughput of a TorchScript model, the baseline bench/torchscript_bench.py divides
// quiver serve's throughput by. For each batch size, on the calling thread only
// (at::set_num_threads(1), like the runtime's default):
//   forward: libtorch alone, module.forward on a ready input tensor under InferenceMode;
//   execute: the plugin's Model::Execute on an InferRequest (copy in, forward, copy out).
// Prints one line per batch size and path:
//   BENCH path=forward batch=32 calls=123456 seconds=5.000 calls_per_s=24691.2 us_per_call=40.50
// Usage: torchscript_predict_bench MODEL.pt FEATURES SECONDS BATCH [BATCH...]
// (FEATURES: the input's per-row shape, e.g. 4 or 1x28x28.)
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/script.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtimes/torchscript/torchscript_runtime.h"

namespace {

using Clock = std::chrono::steady_clock;

// Calls fn until `seconds` have passed, checking the clock every 64 calls.
template <typename Fn>
void Time(const char* path, int64_t batch, double seconds, Fn&& fn) {
  for (int i = 0; i < 100; ++i) fn();  // the profiling executor settles in the first calls
  int64_t calls = 0;
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  Clock::time_point now = start;
  while (now < end) {
    for (int i = 0; i < 64; ++i) fn();
    calls += 64;
    now = Clock::now();
  }
  const double elapsed = std::chrono::duration<double>(now - start).count();
  std::printf(
      "BENCH path=%s batch=%lld calls=%lld seconds=%.3f calls_per_s=%.1f us_per_call=%.2f\n", path,
      static_cast<long long>(batch), static_cast<long long>(calls), elapsed, calls / elapsed,
      elapsed * 1e6 / calls);
  std::fflush(stdout);
}

std::vector<int64_t> ParseShape(const std::string& s) {
  std::vector<int64_t> shape;
  size_t start = 0;
  while (start <= s.size()) {
    size_t x = s.find('x', start);
    if (x == std::string::npos) x = s.size();
    shape.push_back(std::stoll(s.substr(start, x - start)));
    start = x + 1;
  }
  return shape;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL.pt FEATURES SECONDS BATCH [BATCH...]\n", argv[0]);
    return 2;
  }
  const std::string file = argv[1];
  const std::vector<int64_t> row_shape = ParseShape(argv[2]);
  const double seconds = std::atof(argv[3]);
  at::set_num_threads(1);

  torch::jit::Module module = torch::jit::load(file);
  module.eval();
  quiver::TorchScriptRuntime runtime;
  quiver::ModelConfig config;
  config.name = "bench";
  config.format = "pytorch";
  config.model_file = file;
  auto model = runtime.Load(config);
  if (!model.ok()) {
    std::fprintf(stderr, "%s\n", model.status().ToString().c_str());
    return 1;
  }

  for (int a = 4; a < argc; ++a) {
    const int64_t batch = std::atoll(argv[a]);
    std::vector<int64_t> shape = {batch};
    shape.insert(shape.end(), row_shape.begin(), row_shape.end());
    torch::Tensor x = torch::randn(shape);
    {
      c10::InferenceMode guard;
      std::vector<c10::IValue> inputs = {x};
      Time("forward", batch, seconds, [&] {
        torch::Tensor y = module.forward(inputs).toTensor();
        if (y.size(0) != batch) std::abort();
      });
    }
    quiver::InferRequest request;
    quiver::Tensor input;
    input.name = "INPUT__0";
    input.datatype = quiver::DataType::kFp32;
    input.shape = shape;
    input.data = quiver::TensorData::CopyOf(x.data_ptr(), x.numel() * sizeof(float));
    request.inputs.push_back(input);
    Time("execute", batch, seconds, [&] {
      quiver::InferResponse response;
      if (!(*model)->Execute(request, &response).ok()) std::abort();
    });
  }
  return 0;
}
