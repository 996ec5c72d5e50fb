// What metrics cost one request, without the server around it: per simulated request, the five
// steady-clock reads a metered request run inline takes plus ModelMetrics::RecordSuccess and
// RecordExecution, on 1..N threads at once (each on the same model, as I/O threads are). For
// contrast, the same number of increments on atomics all threads share, which is what the
// per-CPU cells avoid. Prints CPU nanoseconds per request. Used by docs/benchmarks.md.
//
// Usage: metrics_record_bench [requests per thread, default 2000000]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>
#include <vector>

#include "observe/model_metrics.h"

namespace {

using Clock = std::chrono::steady_clock;

double ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// CPU time per request, averaged over the threads: on a shared machine wall time would also
// count the time other processes had the CPU, while stalls on contended cache lines are CPU time.
template <typename Body>
double NanosPerRequest(int threads, long per_thread, Body body) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> cpu(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) {
      }
      double start = ThreadCpuNanos();
      for (long i = 0; i < per_thread; ++i) body();
      cpu[static_cast<size_t>(t)] = ThreadCpuNanos() - start;
    });
  }
  while (ready.load() < threads) {
  }
  go.store(true);
  for (auto& t : pool) t.join();
  double sum = 0;
  for (double c : cpu) sum += c;
  return sum / threads / static_cast<double>(per_thread);
}

}  // namespace

int main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 2'000'000;
  quiver::observe::MetricsRegistry registry;
  quiver::observe::InferenceMetrics inference(&registry);
  auto model = inference.ForModel("add_sub", "1");
  std::atomic<uint64_t> shared[18] = {};
  int max_threads = static_cast<int>(std::thread::hardware_concurrency());
  std::printf(
      "threads  metered request (5 clock reads + records), CPU ns  "
      "18 increments of shared atomics, CPU ns\n");
  for (int threads = 1; threads <= max_threads; threads *= 2) {
    double metered = NanosPerRequest(threads, n, [&] {
      quiver::observe::RequestTimeline t;
      t.received = Clock::now();
      t.enqueued = t.compute_start = t.infer_start = Clock::now();  // inline: no queue
      t.infer_end = t.compute_end = Clock::now();
      t.encode_start = Clock::now();
      t.done = Clock::now();
      model->RecordSuccess(t);
      model->RecordExecution(1);
    });
    // RecordSuccess + RecordExecution make 18 atomic updates: 8 counters, 5 histograms' bucket
    // and sum.
    double contended = NanosPerRequest(threads, n, [&] {
      for (auto& c : shared) c.fetch_add(1, std::memory_order_relaxed);
    });
    std::printf("%7d  %52.1f  %39.1f\n", threads, metered, contended);
  }
  std::string text = registry.Scrape();
  std::printf("scrape of the result: %zu bytes\n", text.size());
  return 0;
}
