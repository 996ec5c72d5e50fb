// OpenCV dnn's own in-process throughput on an ONNX model: the baseline bench/onnx_bench.sh
// compares `quiver serve` with. One thread, one cv::dnn::Net, cv::setNumThreads(1) (quiver's
// default intra_op_threads), the same input set and run again each call, as a program that
// embeds OpenCV would do it:
//
//   onnx_bench MODEL.onnx NAME=DIMS [NAME=DIMS ...] [--seconds S]
//   e.g. onnx_bench examples/models/onnx-mlp/model.onnx features=32x16 --seconds 5
//
// Prints one line: BENCH_RESULT calls=N seconds=S per_second=R us_per_call=U cpu_us_per_call=C
// (C: the process's CPU time per call, which another busy process on the same CPU does not
// inflate the way it does wall time).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <string>
#include <vector>

namespace {

struct Input {
  std::string name;
  std::vector<int> dims;
  cv::Mat blob;
};

bool ParseInput(const std::string& arg, Input* input) {
  size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  input->name = arg.substr(0, eq);
  std::string dims = arg.substr(eq + 1);
  size_t start = 0;
  while (start <= dims.size()) {
    size_t x = dims.find('x', start);
    std::string part = dims.substr(start, x == std::string::npos ? std::string::npos : x - start);
    char* end = nullptr;
    long v = std::strtol(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v <= 0 || v > 1 << 20) return false;
    input->dims.push_back(static_cast<int>(v));
    if (x == std::string::npos) break;
    start = x + 1;
  }
  return !input->dims.empty();
}

int Usage() {
  std::fprintf(stderr,
               "usage: onnx_bench MODEL.onnx NAME=DIMS [NAME=DIMS ...] [--seconds S]\n"
               "  e.g. onnx_bench model.onnx features=32x16 --seconds 5\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Usage();
  const std::string model = argv[1];
  double seconds = 5.0;
  std::vector<Input> inputs;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
      if (seconds <= 0) return Usage();
      continue;
    }
    Input input;
    if (!ParseInput(arg, &input)) return Usage();
    inputs.push_back(std::move(input));
  }
  if (inputs.empty()) return Usage();

  cv::setNumThreads(1);
  cv::dnn::Net net;
  std::vector<cv::String> outputs;
  try {
    net = cv::dnn::readNetFromONNX(model);
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    outputs = net.getUnconnectedOutLayersNames();
  } catch (const cv::Exception& e) {
    std::fprintf(stderr, "onnx_bench: cannot load %s: %s\n", model.c_str(), e.what());
    return 1;
  }
  cv::RNG rng(1);
  for (Input& input : inputs) {
    input.blob.create(static_cast<int>(input.dims.size()), input.dims.data(), CV_32F);
    rng.fill(input.blob, cv::RNG::NORMAL, 0.0, 1.0);
  }

  using Clock = std::chrono::steady_clock;
  auto cpu_seconds = [] {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
           (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  };
  std::vector<cv::Mat> results;
  auto run = [&] {
    for (const Input& input : inputs) net.setInput(input.blob, input.name);
    net.forward(results, outputs);
  };
  try {
    // Warm-up: the first forward plans the network for this shape.
    const auto warm_end = Clock::now() + std::chrono::milliseconds(500);
    while (Clock::now() < warm_end) run();
    long calls = 0;
    const double cpu_start = cpu_seconds();
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    auto now = start;
    while (now < end) {
      for (int i = 0; i < 16; ++i) run();
      calls += 16;
      now = Clock::now();
    }
    const double elapsed = std::chrono::duration<double>(now - start).count();
    const double cpu = cpu_seconds() - cpu_start;
    std::printf(
        "BENCH_RESULT calls=%ld seconds=%.3f per_second=%.1f us_per_call=%.2f "
        "cpu_us_per_call=%.2f\n",
        calls, elapsed, calls / elapsed, elapsed * 1e6 / calls, cpu * 1e6 / calls);
  } catch (const cv::Exception& e) {
    std::fprintf(stderr, "onnx_bench: forward failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
