#include "cli/storage_initializer_command.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <system_error>

#include "storage/storage_initializer.h"

extern char** environ;

namespace quiver {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_cancel{false};

void OnSignal(int) { g_cancel.store(true); }

struct StorageInitializerFlags {
  std::string uri;
  std::string dest;
  int attempts = 4;
};

// Moves (same filesystem) or copies the contents of `from` into `to`.
Status PlaceContents(const fs::path& from, const fs::path& to, bool move) {
  std::error_code ec;
  if (fs::is_regular_file(from, ec)) {
    // A local source that is one file (KServe copies it into the folder, too).
    fs::copy_file(from, to / from.filename(), fs::copy_options::overwrite_existing, ec);
    if (ec)
      return Internal("cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
    return Status::Ok();
  }
  for (const auto& entry : fs::directory_iterator(from, ec)) {
    fs::path target = to / entry.path().filename();
    if (move) {
      fs::rename(entry.path(), target, ec);
      if (!ec) continue;
      ec.clear();  // another filesystem: copy instead
    }
    fs::copy(entry.path(), target,
             fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return Internal("cannot copy " + entry.path().string() + " to " + target.string() + ": " +
                      ec.message());
    }
  }
  if (ec) return Internal("cannot list " + from.string() + ": " + ec.message());
  return Status::Ok();
}

int RunStorageInitializer(const StorageInitializerFlags& f) {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  fs::path dest(f.dest);
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) {
    std::cerr << "error: cannot create " << dest << ": " << ec.message() << "\n";
    return 1;
  }
  // The cache lives inside the destination so downloads are renamed into place, not copied
  // (an emptyDir is one filesystem); it is removed at the end.
  fs::path cache = dest / ".quiver-storage";
  storage::StorageOptions options;
  options.cache_dir = cache;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    if (entry.rfind("AWS_", 0) != 0 && entry.rfind("S3_", 0) != 0) continue;
    size_t eq = entry.find('=');
    if (eq != std::string::npos) options.env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  options.retry.max_attempts = f.attempts;
  auto initializer = storage::StorageInitializer::Create(std::move(options));
  if (!initializer.ok()) {
    std::cerr << "error: " << initializer.status().message() << "\n";
    return 1;
  }
  spdlog::info("storage-initializer: {} -> {}", f.uri, dest.string());
  auto model = (*initializer)->Materialize(f.uri, nullptr, &g_cancel);
  if (!model.ok()) {
    fs::remove_all(cache, ec);
    std::cerr << "error: " << model.status().message() << "\n";
    return 1;
  }
  Status placed = PlaceContents(model->model_dir, dest, /*move=*/!model->in_place);
  fs::remove_all(cache, ec);
  if (!placed.ok()) {
    std::cerr << "error: " << placed.message() << "\n";
    return 1;
  }
  spdlog::info("storage-initializer: done ({} bytes downloaded)", model->bytes_downloaded);
  return 0;
}

}  // namespace

void AddStorageInitializerCommand(CLI::App& app) {
  auto f = std::make_shared<StorageInitializerFlags>();
  CLI::App* cmd = app.add_subcommand(
      "storage-initializer",
      "Download a storageUri into a directory, as KServe's storage-initializer init container "
      "(s3:// settings from AWS_*/S3_* variables)");
  cmd->add_option("src_uri", f->uri, "storageUri: s3://, http(s)://, file://, pvc:// or a path")
      ->required();
  cmd->add_option("dest_path", f->dest, "Destination directory (normally /mnt/models)")->required();
  cmd->add_option("--attempts", f->attempts, "Attempts per request (1: no retries)")
      ->check(CLI::Range(1, 20))
      ->capture_default_str();
  cmd->callback([f] { throw CLI::RuntimeError(RunStorageInitializer(*f)); });
}

}  // namespace quiver
