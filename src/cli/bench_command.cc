#include "cli/bench_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>

#include "loadgen/bench_runner.h"

namespace quiver {

void AddBenchCommand(CLI::App& app) {
  auto o = std::make_shared<loadgen::BenchOptions>();
  auto distribution = std::make_shared<std::string>("constant");
  auto percentile = std::make_shared<double>(0);
  CLI::App* cmd = app.add_subcommand(
      "bench", "Load-test a model on an Open Inference Protocol server (perf_analyzer style)");
  cmd->add_option("-m,--model-name,--model", o->model, "Model to load-test")->required();
  cmd->add_option("-x,--model-version", o->model_version, "Model version (default: the server's)");
  cmd->add_option("-u,--url", o->url,
                  "Server address, host:port or http://host:port[/prefix] (default localhost:8080 "
                  "for http, localhost:8081 for grpc)");
  cmd->add_option("-i,--protocol", o->protocol, "http or grpc")
      ->capture_default_str()
      ->check(CLI::IsMember({"http", "grpc"}));
  cmd->add_flag("--binary", o->binary,
                "REST: send inputs and ask for outputs with the binary tensor data extension");
  auto* concurrency = cmd->add_option(
      "--concurrency-range", o->concurrency_range,
      "Closed loop: requests in flight, START[:END[:STEP]]; STEP xF multiplies (1:64:x2). "
      "Default 1");
  auto* rate = cmd->add_option("--request-rate-range", o->request_rate_range,
                               "Open loop: requests per second, START[:END[:STEP]] (as above)");
  concurrency->excludes(rate);
  cmd->add_option("--request-distribution", *distribution,
                  "Open loop: constant or poisson spacing of requests")
      ->capture_default_str()
      ->check(CLI::IsMember({"constant", "poisson"}));
  cmd->add_option("-b,--batch-size", o->batch_size,
                  "Items per request: the size of each input's variable first dimension")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--input-data", o->input_data,
                  "random (never 0 for numbers), zero, or a JSON file: perf_analyzer's "
                  "{\"data\": [...]} or a v2 request body")
      ->capture_default_str();
  cmd->add_option("--shape", o->shapes,
                  "NAME:D1,D2,... for an input's variable dimensions (repeatable); without it "
                  "they are 1, the first one the batch size");
  cmd->add_option("--string-length", o->string_length, "Length of random BYTES elements")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  cmd->add_option("-p,--measurement-interval", o->measurement_interval_ms,
                  "Length of a measurement window, ms")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{10}, int64_t{3600'000}));
  cmd->add_option("-s,--stability-percentage", o->stability_percentage,
                  "Stable when the last 3 windows' throughput and latency are within this %")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 1000.0));
  cmd->add_option("-r,--max-trials", o->max_trials, "Most windows per load level")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--percentile", *percentile,
                  "Compare this latency percentile (50, 90, 95, 99) for stability instead of "
                  "the average")
      ->check(CLI::IsMember({50, 90, 95, 99}));
  cmd->add_option("--threads", o->threads,
                  "Sender threads, each with its own event loop and connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  cmd->add_option("--max-connections", o->max_connections,
                  "Open loop: most requests in flight (HTTP connections)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--request-timeout", o->request_timeout_ms,
                  "A request without an answer after this many ms is an error")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{3600'000}));
  cmd->add_option("--metrics-url", o->metrics_url,
                  "Prometheus metrics for the server-side queue/compute split (default: "
                  "/metrics on the HTTP server; 'none' to skip)");
  cmd->add_option("-f,--csv", o->csv_path, "Also write the results as CSV to this file");
  cmd->add_option("--json", o->json_path, "Also write the results as JSON to this file");
  cmd->add_option("--seed", o->seed, "Seed for random inputs and Poisson schedules")
      ->capture_default_str();
  cmd->footer(
      "Exit status: 0 when every request succeeded; 1 when the run could not start (unknown "
      "model, unreachable server); 2 for bad options; 3 when results were printed but some "
      "requests failed.");
  cmd->callback([o, distribution, percentile, cmd] {
    o->distribution = *distribution == "poisson" ? loadgen::Distribution::kPoisson
                                                 : loadgen::Distribution::kConstant;
    if (cmd->count("--percentile") > 0) o->percentile = *percentile;
    int code = loadgen::RunBench(*o, std::cout, std::cerr, isatty(STDERR_FILENO) == 1);
    std::cout.flush();
    throw CLI::RuntimeError(code);
  });
}

}  // namespace quiver
