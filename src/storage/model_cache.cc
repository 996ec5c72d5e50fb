#include "storage/model_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "storage/sha256.h"

namespace quiver::storage {

namespace fs = std::filesystem;

namespace {

std::string UriKey(const std::string& uri) { return Sha256Hex(uri); }

}  // namespace

ModelCache::UriLock::UriLock(UriLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

ModelCache::UriLock& ModelCache::UriLock::operator=(UriLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

// Closing the descriptor releases the flock.
ModelCache::UriLock::~UriLock() {
  if (fd_ >= 0) ::close(fd_);
}

StatusOr<std::unique_ptr<ModelCache>> ModelCache::Open(const fs::path& dir) {
  if (dir.empty()) return InvalidArgument("storage: the cache directory is not set");
  for (const char* sub : {"entries", "staging", "locks"}) {
    std::error_code ec;
    fs::create_directories(dir / sub, ec);
    if (ec) {
      return Internal("cannot create the model cache directory " + (dir / sub).string() + ": " +
                      ec.message());
    }
  }
  std::error_code ec;
  fs::path absolute = fs::absolute(dir, ec);
  return std::unique_ptr<ModelCache>(new ModelCache(ec ? dir : absolute));
}

std::string ModelCache::EntryName(const std::string& uri, const std::string& validator) {
  return Sha256Hex(uri + "\n" + validator);
}

StatusOr<ModelCache::UriLock> ModelCache::Lock(const std::string& uri) {
  std::string key = UriKey(uri);
  fs::path path = dir_ / "locks" / (key + ".lock");
  UriLock lock;
  lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock.fd_ < 0) return Internal("cannot open " + path.string() + ": " + std::strerror(errno));
  // flock locks belong to the open file description, so two threads of one process that open
  // the file separately exclude each other as two processes do.
  while (::flock(lock.fd_, LOCK_EX) != 0) {
    if (errno != EINTR)
      return Internal("cannot lock " + path.string() + ": " + std::strerror(errno));
  }
  // Whoever staged under this URI before and is gone (we hold the lock) left an orphan.
  std::error_code ec;
  for (const auto& item : fs::directory_iterator(dir_ / "staging", ec)) {
    if (item.path().filename().string().starts_with(key + ".")) {
      std::error_code ignored;
      fs::remove_all(item.path(), ignored);
    }
  }
  return lock;
}

std::optional<fs::path> ModelCache::Find(const std::string& uri,
                                         const std::string& validator) const {
  fs::path model = dir_ / "entries" / EntryName(uri, validator) / "model";
  std::error_code ec;
  if (fs::is_directory(model, ec)) return model;
  return std::nullopt;
}

StatusOr<fs::path> ModelCache::Stage(const std::string& uri) {
  static std::atomic<uint64_t> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch().count();
  fs::path staging = dir_ / "staging" /
                     (UriKey(uri) + "." + std::to_string(::getpid()) + "." + std::to_string(now) +
                      "." + std::to_string(counter.fetch_add(1)));
  std::error_code ec;
  fs::create_directories(staging / "model", ec);
  if (ec) return Internal("cannot create " + staging.string() + ": " + ec.message());
  return staging;
}

StatusOr<fs::path> ModelCache::Commit(const fs::path& staging, const std::string& uri,
                                      const std::string& validator) {
  {
    nlohmann::json source = {{"uri", uri}, {"validator", validator}};
    std::ofstream out(staging / "source.json");
    out << source.dump(2) << "\n";
    if (!out.good()) return Internal("cannot write " + (staging / "source.json").string());
  }
  fs::path entry = dir_ / "entries" / EntryName(uri, validator);
  std::error_code ec;
  if (fs::exists(entry, ec)) {
    // Moved aside first so that the name never points to a partial directory.
    fs::path old = staging.string() + ".replaced";
    fs::rename(entry, old, ec);
    if (ec) return Internal("cannot replace " + entry.string() + ": " + ec.message());
    fs::remove_all(old, ec);
  }
  fs::rename(staging, entry, ec);
  if (ec)
    return Internal("cannot move " + staging.string() + " to " + entry.string() + ": " +
                    ec.message());
  return entry / "model";
}

void ModelCache::Discard(const fs::path& staging) const {
  std::error_code ec;
  fs::remove_all(staging, ec);
}

}  // namespace quiver::storage
