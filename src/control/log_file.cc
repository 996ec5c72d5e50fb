#include "control/log_file.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "control/process.h"

namespace quiver::control {
namespace {

Status ErrnoStatus(const std::string& what) {
  return Internal(what + ": " + strerrordesc_np(errno));
}

}  // namespace

StatusOr<bool> RotateLogIfLarger(const std::string& path, uint64_t max_bytes) {
  UniqueFd in(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!in.valid()) {
    if (errno == ENOENT) return false;
    return ErrnoStatus("cannot open log '" + path + "'");
  }
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return ErrnoStatus("cannot stat log '" + path + "'");
  if (static_cast<uint64_t>(st.st_size) <= max_bytes) return false;

  const std::string rotated = path + ".1";
  const std::string temp = rotated + ".tmp";
  {
    UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!out.valid()) return ErrnoStatus("cannot create '" + temp + "'");
    std::vector<char> buffer(1 << 16);
    for (;;) {
      const ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("cannot read log '" + path + "'");
      }
      if (n == 0) break;
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = ::write(out.get(), buffer.data() + done, n - done);
        if (w < 0) {
          if (errno == EINTR) continue;
          return ErrnoStatus("cannot write '" + temp + "'");
        }
        done += w;
      }
    }
  }
  // Rename last so that a reader of .1 never sees a half-copied file.
  if (::rename(temp.c_str(), rotated.c_str()) != 0) {
    return ErrnoStatus("cannot rename '" + temp + "' to '" + rotated + "'");
  }
  if (::ftruncate(in.get(), 0) != 0) return ErrnoStatus("cannot truncate log '" + path + "'");
  return true;
}

std::string ReadLogTail(const std::string& path, int max_lines, uint64_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() || max_lines <= 0) return "";
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || st.st_size == 0) return "";
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t start = size > max_bytes ? size - max_bytes : 0;
  std::string text(size - start, '\0');
  ssize_t got = ::pread(fd.get(), text.data(), text.size(), static_cast<off_t>(start));
  if (got <= 0) return "";
  text.resize(static_cast<size_t>(got));
  // Drop one trailing newline so it does not count as an empty last line.
  size_t end = text.size();
  if (end > 0 && text[end - 1] == '\n') --end;
  size_t begin = end;
  int lines = 0;
  while (begin > 0) {
    if (text[begin - 1] == '\n' && ++lines == max_lines) break;
    --begin;
  }
  // A cut in the middle of the first line (max_bytes reached) keeps the partial line: it is
  // still the most useful context there is.
  return text.substr(begin, end - begin);
}

}  // namespace quiver::control
