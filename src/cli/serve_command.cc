#include "cli/serve_command.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "cli/serve_telemetry.h"
#include "common/logging.h"
#include "common/system.h"
#include "http/server.h"
#include "observe/metrics_registry.h"
#include "observe/model_metrics.h"
#include "observe/process_metrics.h"
#include "observe/telemetry_metrics.h"
#include "repository/model_config.h"
#include "repository/model_repository.h"
#include "runtime/runtime_registry.h"
#include "server/grpc_frontend.h"
#include "server/serve_metrics.h"
#include "server/server_core.h"

#ifndef QUIVER_VERSION
#define QUIVER_VERSION "0.0.0"
#endif

namespace quiver {
namespace {

namespace fs = std::filesystem;

struct ServeFlags {
  std::string model_repository;
  std::string model_name = "model";
  std::string model_dir;
  // KServe's transformer flags: where the predictor (and explainer) is and how to call it. They
  // become parameters of the --model_dir model (config.yaml's own values win), which is how a
  // custom Python Model receives them.
  std::string predictor_host;
  std::string predictor_protocol;
  std::string explainer_host;
  std::string host = "0.0.0.0";
  int http_port = 8080;
  int grpc_port = 8081;
  int workers = 0;
  bool enable_grpc = true;
  int grpc_max_send = 8 << 20;
  int grpc_max_receive = 8 << 20;
  std::string builtin_models = "echo,add_sub,sleep";
  bool strict_readiness = true;
  size_t max_body_bytes = 64u << 20;
  size_t max_header_bytes = 16u << 10;
  double read_timeout_s = 60;
  double keep_alive_s = 65;
  double drain_timeout_s = 30;
  std::string runtime_dir;
  int64_t max_batch_size = 0;
  int64_t max_latency_ms = -1;
  std::string model_control_mode = "none";
  std::vector<std::string> load_models;
  std::string log_level = "info";
  std::string log_format = "text";
  TelemetryFlags telemetry;
  bool allow_metrics = true;
};

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Declares every model the flags name; returns an error for flags that make no sense.
Status DeclareModels(const ServeFlags& f, ModelRepository* repo) {
  bool explicit_mode = f.model_control_mode == "explicit";
  if (!explicit_mode && !f.load_models.empty()) {
    return InvalidArgument("--load-model needs --model-control-mode explicit");
  }
  // In explicit mode only the models named by --load-model (or all, with '*') load at start;
  // the others wait for POST /v2/repository/models/{name}/load.
  auto load_at_start = [&](const std::string& name) {
    if (!explicit_mode) return true;
    for (const auto& m : f.load_models) {
      if (m == name || m == "*") return true;
    }
    return false;
  };
  if (f.builtin_models != "none") {
    for (const auto& name : SplitList(f.builtin_models)) {
      if (name != "echo" && name != "add_sub" && name != "sleep") {
        return InvalidArgument("--builtin-models: unknown built-in model '" + name +
                               "' (expected echo, add_sub, sleep, or none)");
      }
      ModelConfig c;
      c.name = name;
      c.format = name;
      repo->Declare(name, c, {}, load_at_start(name));
    }
  }
  if (!f.model_repository.empty()) {
    std::error_code ec;
    if (!fs::is_directory(f.model_repository, ec)) {
      return InvalidArgument("--model-repository: " + f.model_repository +
                             " is not a directory");
    }
    std::vector<fs::path> dirs;
    for (const auto& entry : fs::directory_iterator(f.model_repository, ec)) {
      if (entry.is_directory() && entry.path().filename().string()[0] != '.') {
        dirs.push_back(entry.path());
      }
    }
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      std::string name = d.filename().string();
      repo->Declare(name, ReadModelConfig(d, name), d, load_at_start(name));
    }
    repo->SetRoot(f.model_repository);
  }
  if (!f.model_dir.empty()) {
    std::map<std::string, std::string> defaults;
    if (!f.predictor_host.empty()) defaults["predictor_host"] = f.predictor_host;
    if (!f.predictor_protocol.empty()) defaults["protocol"] = f.predictor_protocol;
    if (!f.explainer_host.empty()) defaults["explainer_host"] = f.explainer_host;
    repo->SetParameterDefaults(f.model_name, std::move(defaults));
    repo->Declare(f.model_name, ReadModelConfig(f.model_dir, f.model_name), f.model_dir,
                  load_at_start(f.model_name));
  }
  for (const auto& m : f.load_models) {
    if (m != "*" && repo->Find(m) == nullptr) {
      return InvalidArgument("--load-model: no model named '" + m + "' in the repository");
    }
  }
  return Status::Ok();
}

int RunServe(const ServeFlags& f) {
  Status s = InitLogging(f.log_level, f.log_format);
  if (!s.ok()) {
    std::fprintf(stderr, "quiver serve: %s\n", s.message().c_str());
    return 2;
  }
  // Signals are taken by one thread with sigwait; every other thread inherits this mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGQUIT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<fs::path> plugin_dirs;
  if (!f.runtime_dir.empty()) plugin_dirs.emplace_back(f.runtime_dir);
  for (auto& d : RuntimeRegistry::DefaultPluginDirs()) plugin_dirs.push_back(d);
  RuntimeRegistry registry(plugin_dirs);
  // Metrics outlive the repository: models hold their metric children until released.
  std::unique_ptr<observe::MetricsRegistry> metrics;
  std::unique_ptr<observe::InferenceMetrics> inference_metrics;
  if (f.allow_metrics) {
    metrics = std::make_unique<observe::MetricsRegistry>();
    inference_metrics = std::make_unique<observe::InferenceMetrics>(metrics.get());
  }
  ModelRepository repository(&registry);
  if (metrics) {
    repository.SetMetrics(inference_metrics.get());
    AddModelStateMetrics(metrics.get(), &repository);
    observe::AddProcessMetrics(metrics.get());
  }
  if (f.max_batch_size > 0) {
    BatchingConfig b;
    b.max_batch_size = f.max_batch_size;
    // KServe's agent default latency is 5000 ms; without --max-latency Quiver waits 0 (batch
    // what is queued whenever an instance is free), which is Triton's default.
    b.max_queue_delay = std::chrono::milliseconds(std::max<int64_t>(f.max_latency_ms, 0));
    repository.SetDefaultBatching(b);
  } else if (f.max_latency_ms >= 0) {
    spdlog::error("--max-latency needs --max-batch-size");
    return 2;
  }
  s = DeclareModels(f, &repository);
  if (!s.ok()) {
    spdlog::error("{}", s.message());
    return 2;
  }
  // Declared before the frontends so that it outlives every request.
  auto telemetry = MakeTelemetry(f.telemetry, GetEnv, f.log_format == "json", f.http_port,
                                 QUIVER_VERSION);
  if (!telemetry.ok()) {
    spdlog::error("{}", telemetry.status().message());
    return 2;
  }
  if (metrics) observe::AddTelemetryMetrics(metrics.get(), telemetry->get());
  ServerCore core(&repository, ServerCoreOptions{.server_name = "quiver",
                                                 .server_version = QUIVER_VERSION,
                                                 .strict_readiness = f.strict_readiness,
                                                 .telemetry = telemetry->get(),
                                                 .metrics = metrics.get()});
  http::ServerOptions options;
  options.host = f.host;
  options.port = static_cast<uint16_t>(f.http_port);
  options.io_threads = f.workers;
  options.max_body_bytes = f.max_body_bytes;
  options.max_header_bytes = f.max_header_bytes;
  options.read_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.read_timeout_s * 1e3));
  options.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.keep_alive_s * 1e3));
  options.drain_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(f.drain_timeout_s * 1e3));
  auto server = http::HttpServer::Create(
      options, [&core](http::Request&& r, http::Responder w) { core.Handle(std::move(r), std::move(w)); });
  if (!server.ok()) {
    spdlog::error("{}", server.status().message());
    return 1;
  }
  http::HttpServer* http = server->get();
  std::unique_ptr<GrpcFrontend> grpc;
  if (f.enable_grpc) {
    auto started = GrpcFrontend::Start(&core, GrpcOptions{.host = f.host,
                                                          .port = f.grpc_port,
                                                          .max_receive_bytes = f.grpc_max_receive,
                                                          .max_send_bytes = f.grpc_max_send});
    if (!started.ok()) {
      spdlog::error("{}", started.status().message());
      return 1;
    }
    grpc = std::move(started).value();
    spdlog::info("gRPC server listening on {}:{}", f.host, grpc->port());
  }

  // Logged last: tests and scripts take this line to mean every listener is up.
  spdlog::info("quiver {} serving; HTTP server listening on {}:{} ({} I/O thread(s))",
               QUIVER_VERSION, f.host, http->port(),
               f.workers > 0 ? f.workers : AvailableCpus());
  auto drain = options.drain_timeout;
  std::thread signal_thread([http, &grpc, &signals, drain] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received signal {}; draining in-flight requests", sig);
    http->Shutdown();
    if (grpc) grpc->Shutdown(std::chrono::system_clock::now() + drain);
  });
  // KServe's model server exits when its one model cannot be loaded (NoModelReady), so that
  // a supervisor (kubelet, `quiver up`) sees the failure and restarts it with backoff. With
  // --model_dir Quiver does the same; a model repository keeps serving the other models.
  std::atomic<bool> single_model_failed{false};
  std::thread loader([&repository, &f, &single_model_failed] {
    repository.LoadAll();
    if (f.model_dir.empty()) return;
    auto entry = repository.Find(f.model_name);
    if (entry != nullptr && entry->state == ModelState::kFailed) {
      spdlog::error("model '{}' could not be loaded, and it is the only model (--model_dir): "
                    "exiting: {}",
                    f.model_name, entry->reason);
      single_model_failed = true;
      ::kill(::getpid(), SIGTERM);  // the signal thread drains and stops the server
    }
  });

  http->Run();
  loader.join();
  core.Stop();
  // Run what is queued on model instances, then stop them, while the I/O contexts still exist.
  repository.UnloadAll();
  signal_thread.join();
  if (*telemetry) {
    // Spans and payload events still queued get a bounded time to leave.
    (*telemetry)->Shutdown(std::chrono::steady_clock::now() +
                           std::min<std::chrono::steady_clock::duration>(drain,
                                                                         std::chrono::seconds(5)));
  }
  spdlog::info("stopped");
  return single_model_failed ? 1 : 0;
}

}  // namespace

void AddServeCommand(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve models over the Open Inference Protocol");
  cmd->add_option("--model-repository,--model_repository", flags->model_repository,
                  "Directory whose sub-folders are models, one per folder");
  cmd->add_option("--model-name,--model_name", flags->model_name,
                  "Name of the model in --model_dir (KServe's flag)")
      ->capture_default_str();
  cmd->add_option("--model-dir,--model_dir", flags->model_dir,
                  "Directory holding one model (KServe's flag)");
  cmd->add_option("--predictor-host,--predictor_host", flags->predictor_host,
                  "A transformer's predictor, host:port[/path] (KServe's flag); given to the "
                  "--model_dir model as parameters.predictor_host");
  cmd->add_option("--protocol,--predictor-protocol,--predictor_protocol",
                  flags->predictor_protocol,
                  "Protocol of the predictor: v1, v2 or grpc-v2 (KServe's flag)")
      ->check(CLI::IsMember({"v1", "v2", "grpc-v2"}));
  cmd->add_option("--explainer-host,--explainer_host", flags->explainer_host,
                  "The explainer, host:port (KServe's flag)");
  cmd->add_option("--host", flags->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--http-port,--http_port", flags->http_port, "HTTP port (0: any free port)")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--grpc-port,--grpc_port", flags->grpc_port, "gRPC port (0: any free port)")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--enable-grpc,--enable_grpc", flags->enable_grpc,
                  "Serve the Open Inference Protocol over gRPC too")
      ->capture_default_str();
  cmd->add_option("--grpc-max-send-message-length,--grpc_max_send_message_length",
                  flags->grpc_max_send, "Largest gRPC message sent, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(1024, 1 << 30));
  cmd->add_option("--grpc-max-receive-message-length,--grpc_max_receive_message_length",
                  flags->grpc_max_receive, "Largest gRPC message received, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(1024, 1 << 30));
  cmd->add_option("--workers,--io-threads,--io_threads", flags->workers,
                  "I/O threads (0: one per CPU this process may use)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--builtin-models,--builtin_models", flags->builtin_models,
                  "Built-in test models to serve, comma-separated, or 'none'")
      ->capture_default_str();
  cmd->add_option("--strict-readiness,--strict_readiness", flags->strict_readiness,
                  "Server ready only when every model is READY (false: when loading is done)")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes,--max_body_bytes", flags->max_body_bytes,
                  "Largest request body accepted (413 beyond)")
      ->capture_default_str();
  cmd->add_option("--max-header-bytes,--max_header_bytes", flags->max_header_bytes,
                  "Largest request header block accepted (431 beyond)")
      ->capture_default_str();
  cmd->add_option("--read-timeout,--read_timeout", flags->read_timeout_s,
                  "Seconds a request may take to arrive once started (408 beyond)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--timeout-keep-alive,--timeout_keep_alive", flags->keep_alive_s,
                  "Seconds an idle keep-alive connection is kept open")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--drain-timeout,--drain_timeout", flags->drain_timeout_s,
                  "Seconds in-flight requests get to finish after SIGTERM")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-batch-size,--max_batch_size,--max-batchsize", flags->max_batch_size,
                  "Dynamic batching for models whose config.yaml does not set it: largest batch "
                  "in items (0: off)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("--max-latency,--max_latency", flags->max_latency_ms,
                  "With --max-batch-size: milliseconds the oldest request may wait for a batch "
                  "to fill (KServe's batcher maxLatency)")
      ->check(CLI::Range(int64_t{0}, int64_t{3600'000}));
  cmd->add_option("--model-control-mode,--model_control_mode", flags->model_control_mode,
                  "none: load every model at start; explicit: only --load-model ones, the rest "
                  "through the repository API")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "explicit"}));
  cmd->add_option("--load-model,--load_model", flags->load_models,
                  "In explicit mode, a model to load at start ('*' for all); repeatable");
  cmd->add_option("--runtime-dir,--runtime_dir", flags->runtime_dir,
                  "Extra directory searched first for runtime plugins (quiver-<name>.so)");
  cmd->add_option("--allow-metrics,--allow_metrics", flags->allow_metrics,
                  "Serve Prometheus metrics at GET /metrics on the HTTP port (false: no "
                  "/metrics, and requests record nothing)")
      ->capture_default_str();
  cmd->add_option("--log-level,--log_level", flags->log_level,
                  "trace|debug|info|warn|error|off")
      ->capture_default_str();
  cmd->add_option("--log-format,--log_format", flags->log_format, "text|json")
      ->capture_default_str();
  AddTelemetryFlags(cmd, &flags->telemetry);
  cmd->callback([flags] { throw CLI::RuntimeError(RunServe(*flags)); });
}

}  // namespace quiver
