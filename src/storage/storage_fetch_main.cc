// storage_fetch: a test tool (not installed) that runs the storage initializer once from the
// command line, so integration tests can drive it as a real process:
//   storage_fetch --cache-dir DIR [--pvc-root DIR] [--attempts N] [--progress] URI
// S3 settings come from this process's environment (AWS_ACCESS_KEY_ID, S3_ENDPOINT, ...).
// Prints the model directory on stdout and one line "from_cache=0|1 in_place=0|1 bytes=N" on
// stderr; on failure prints the status on stderr and exits 1.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>

#include "storage/storage_initializer.h"

extern char** environ;

namespace {

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel.store(true); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Materialize a storageUri with Quiver's storage initializer (test tool)"};
  std::string uri;
  std::string cache_dir;
  std::string pvc_root = "/mnt/pvc";
  int attempts = 4;
  int backoff_ms = 200;
  bool show_progress = false;
  app.add_option("uri", uri, "storageUri")->required();
  app.add_option("--cache-dir", cache_dir, "model cache directory");
  app.add_option("--pvc-root", pvc_root, "where pvc://claim/path volumes are mounted");
  app.add_option("--attempts", attempts, "attempts per request (1: no retries)");
  app.add_option("--backoff-ms", backoff_ms, "first retry backoff in milliseconds");
  app.add_flag("--progress", show_progress, "print progress lines on stderr");
  CLI11_PARSE(app, argc, argv);

  // stdout carries only the model directory; the initializer's log goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("storage_fetch"));
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  quiver::storage::StorageOptions options;
  options.cache_dir = cache_dir;
  options.pvc_root = pvc_root;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    size_t eq = entry.find('=');
    if (eq != std::string::npos) options.env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  options.retry.max_attempts = attempts;
  options.retry.initial_backoff = std::chrono::milliseconds(backoff_ms);
  options.transfer.connect_timeout = std::chrono::milliseconds(5000);
  auto initializer = quiver::storage::StorageInitializer::Create(std::move(options));
  if (!initializer.ok()) {
    std::cerr << initializer.status().ToString() << "\n";
    return 1;
  }
  quiver::storage::Progress progress;
  if (show_progress) {
    progress = [](const quiver::storage::ProgressUpdate& p) {
      std::cerr << "progress " << p.bytes_done << "/" << p.bytes_total << " " << p.current_file
                << "\n";
    };
  }
  auto model = (*initializer)->Materialize(uri, progress, &g_cancel);
  if (!model.ok()) {
    std::cerr << model.status().ToString() << "\n";
    return 1;
  }
  std::cout << model->model_dir.string() << std::endl;
  std::cerr << "from_cache=" << model->from_cache << " in_place=" << model->in_place
            << " bytes=" << model->bytes_downloaded << "\n";
  return 0;
}
