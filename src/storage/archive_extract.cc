#include "storage/archive_extract.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

#include "storage/archive_api.h"

namespace quiver::storage {
namespace {

namespace fs = std::filesystem;

struct ReaderDeleter {
  const ArchiveApi* api;
  void operator()(struct archive* a) const { api->read_free(a); }
};

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Path components of a safe relative path, without "." and empty ones.
std::vector<std::string> Components(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (!part.empty() && part != ".") out.push_back(std::move(part));
    start = end + 1;
  }
  return out;
}

// Creates the parent directories of `parts` under `root`, refusing to pass through a symlink
// (one created by an earlier entry could point anywhere).
Status MakeParents(const fs::path& root, const std::vector<std::string>& parts,
                   const std::string& entry) {
  fs::path dir = root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    dir /= parts[i];
    struct stat st;
    if (::lstat(dir.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) {
        return InvalidArgument("archive entry '" + entry + "' goes through the symlink '" +
                               parts[i] + "'; refused");
      }
      if (!S_ISDIR(st.st_mode)) {
        return InvalidArgument("archive entry '" + entry + "': '" + parts[i] +
                               "' is a file, not a directory");
      }
      continue;
    }
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return Internal("cannot create " + dir.string() + ": " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

// The final path component must not be a symlink either when something is written over it.
Status ClearTarget(const fs::path& target, const std::string& entry) {
  struct stat st;
  if (::lstat(target.c_str(), &st) != 0) return Status::Ok();
  if (S_ISDIR(st.st_mode)) {
    return InvalidArgument("archive entry '" + entry + "' would replace a directory");
  }
  if (::unlink(target.c_str()) != 0) {
    return Internal("cannot replace " + target.string() + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// Whether the target of `link`, resolved from the directory holding it, stays under `root`.
// Resolved on disk (weakly_canonical), so chains of symlinks count too; a dangling tail is
// normalised lexically.
bool SymlinkStaysInside(const fs::path& root, const fs::path& link) {
  std::error_code ec;
  fs::path canonical_root = fs::weakly_canonical(root, ec);
  if (ec) return false;
  fs::path target = fs::read_symlink(link, ec);
  if (ec) return false;
  fs::path resolved =
      fs::weakly_canonical(fs::weakly_canonical(link.parent_path(), ec) / target, ec);
  if (ec) return false;
  auto r = canonical_root.begin();
  auto p = resolved.begin();
  for (; r != canonical_root.end(); ++r, ++p) {
    if (p == resolved.end() || *p != *r) return false;
  }
  return true;
}

}  // namespace

bool IsSafeRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/' || path.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.compare(start, end - start, "..") == 0 && end - start == 2) return false;
    start = end + 1;
  }
  return true;
}

Status ExtractArchive(const fs::path& archive, const fs::path& dest,
                      const std::string& display_name, const ExtractLimits& limits,
                      const std::function<void(const std::string&)>& on_file,
                      const std::atomic<bool>* cancel) {
  QUIVER_ASSIGN_OR_RETURN(const ArchiveApi* api, LoadArchive());
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return Internal("cannot create " + dest.string() + ": " + ec.message());
  std::unique_ptr<struct archive, ReaderDeleter> reader(api->read_new(), ReaderDeleter{api});
  if (!reader) return Internal("libarchive: archive_read_new failed");
  struct archive* a = reader.get();
  // Only the formats Quiver promises; every compression filter (gzip, bzip2, xz, zstd).
  api->read_support_filter_all(a);
  api->read_support_format_tar(a);
  api->read_support_format_gnutar(a);
  api->read_support_format_zip(a);
  auto corrupt = [&](const std::string& context) {
    const char* why = api->error_string(a);
    return InvalidArgument("archive '" + display_name + "' is corrupt or not a tar/zip file" +
                           context + ": " + (why != nullptr ? why : "unknown error"));
  };
  if (api->read_open_filename(a, archive.c_str(), 1 << 16) != ARCHIVE_OK) return corrupt("");

  std::vector<fs::path> symlinks;
  std::vector<std::string> symlink_entries;
  uint64_t total = 0;
  uint64_t entries = 0;
  std::vector<char> buffer(1 << 16);
  for (;;) {
    struct archive_entry* entry = nullptr;
    int rc = api->read_next_header(a, &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return corrupt(" (reading an entry header)");
    if (cancel != nullptr && cancel->load()) {
      return Unavailable("unpacking '" + display_name + "': cancelled");
    }
    if (++entries > limits.max_entries) {
      return ResourceExhausted("archive '" + display_name + "' has more than " +
                               std::to_string(limits.max_entries) + " entries");
    }
    const char* raw_name = api->entry_pathname(entry);
    std::string name = raw_name != nullptr ? raw_name : "";
    if (!IsSafeRelativePath(name)) {
      return InvalidArgument("archive '" + display_name + "': entry '" + name +
                             "' is absolute, empty or contains '..'; refused");
    }
    std::vector<std::string> parts = Components(name);
    if (parts.empty()) continue;  // "./" itself
    if (on_file) on_file(name);
    QUIVER_RETURN_IF_ERROR(MakeParents(dest, parts, name));
    fs::path target = dest;
    for (const std::string& p : parts) target /= p;

    const char* hardlink = api->entry_hardlink(entry);
    if (hardlink != nullptr) {
      std::string link_name = hardlink;
      if (!IsSafeRelativePath(link_name)) {
        return InvalidArgument("archive '" + display_name + "': hard link '" + name +
                               "' points to '" + link_name + "', outside the archive; refused");
      }
      fs::path source = dest;
      for (const std::string& p : Components(link_name)) source /= p;
      struct stat st;
      if (::lstat(source.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return InvalidArgument("archive '" + display_name + "': hard link '" + name +
                               "' points to '" + link_name +
                               "', which is not an earlier regular file of the archive");
      }
      QUIVER_RETURN_IF_ERROR(ClearTarget(target, name));
      if (::link(source.c_str(), target.c_str()) != 0) {
        return Internal("cannot link " + target.string() + ": " + std::strerror(errno));
      }
      continue;
    }
    mode_t type = api->entry_filetype(entry);
    if (type == AE_IFDIR) {
      struct stat st;
      if (::lstat(target.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
          return InvalidArgument("archive '" + display_name + "': directory entry '" + name +
                                 "' would replace a file or symlink");
        }
      } else if (::mkdir(target.c_str(), 0755) != 0) {
        return Internal("cannot create " + target.string() + ": " + std::strerror(errno));
      }
      continue;
    }
    if (type == AE_IFLNK) {
      const char* raw_target = api->entry_symlink(entry);
      std::string link_target = raw_target != nullptr ? raw_target : "";
      if (link_target.empty() || link_target.front() == '/') {
        return InvalidArgument("archive '" + display_name + "': symlink '" + name +
                               "' points to the absolute path '" + link_target + "'; refused");
      }
      QUIVER_RETURN_IF_ERROR(ClearTarget(target, name));
      if (::symlink(link_target.c_str(), target.c_str()) != 0) {
        return Internal("cannot create symlink " + target.string() + ": " + std::strerror(errno));
      }
      // Checked once everything is unpacked: a target may be created by a later entry.
      symlinks.push_back(target);
      symlink_entries.push_back(name + " -> " + link_target);
      continue;
    }
    if (type != AE_IFREG) {
      return InvalidArgument("archive '" + display_name + "': entry '" + name +
                             "' is a device, FIFO or socket; only files, directories and links "
                             "are allowed");
    }
    if (api->entry_size_is_set(entry) &&
        static_cast<uint64_t>(api->entry_size(entry)) > limits.max_total_bytes - total) {
      return ResourceExhausted("archive '" + display_name + "': unpacking entry '" + name +
                               "' would exceed the limit of " +
                               std::to_string(limits.max_total_bytes) + " bytes");
    }
    QUIVER_RETURN_IF_ERROR(ClearTarget(target, name));
    Fd out;
    out.fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out.fd < 0)
      return Internal("cannot create " + target.string() + ": " + std::strerror(errno));
    for (;;) {
      la_ssize_t n = api->read_data(a, buffer.data(), buffer.size());
      if (n == 0) break;
      if (n < 0) return corrupt(" (entry '" + name + "')");
      total += static_cast<uint64_t>(n);
      if (total > limits.max_total_bytes) {
        return ResourceExhausted("archive '" + display_name + "': unpacking entry '" + name +
                                 "' exceeds the limit of " +
                                 std::to_string(limits.max_total_bytes) + " bytes");
      }
      const char* p = buffer.data();
      size_t left = static_cast<size_t>(n);
      while (left > 0) {
        ssize_t w = ::write(out.fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return Internal("cannot write " + target.string() + ": " + std::strerror(errno));
        p += w;
        left -= static_cast<size_t>(w);
      }
      if (cancel != nullptr && cancel->load()) {
        return Unavailable("unpacking '" + display_name + "': cancelled");
      }
    }
  }
  for (size_t i = 0; i < symlinks.size(); ++i) {
    if (!SymlinkStaysInside(dest, symlinks[i])) {
      return InvalidArgument("archive '" + display_name + "': symlink '" + symlink_entries[i] +
                             "' resolves outside the model directory; refused");
    }
  }
  return Status::Ok();
}

}  // namespace quiver::storage
