#include "storage/archive_api.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>

namespace quiver::storage {
namespace {

struct LoadedArchive {
  ArchiveApi api{};
  std::string error;  // empty when loaded
};

const LoadedArchive& Loaded() {
  static const LoadedArchive loaded = [] {
    LoadedArchive out;
    void* lib = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      out.error =
          std::string("cannot load libarchive.so.13 (Debian package libarchive13): ") + dlerror();
      return out;
    }
    auto sym = [&](auto* fn, const char* name) {
      *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(lib, name));
      if (*fn == nullptr && out.error.empty()) {
        out.error = std::string("libarchive.so.13 has no ") + name;
      }
    };
    sym(&out.api.read_new, "archive_read_new");
    sym(&out.api.read_support_filter_all, "archive_read_support_filter_all");
    sym(&out.api.read_support_format_tar, "archive_read_support_format_tar");
    sym(&out.api.read_support_format_gnutar, "archive_read_support_format_gnutar");
    sym(&out.api.read_support_format_zip, "archive_read_support_format_zip");
    sym(&out.api.read_open_filename, "archive_read_open_filename");
    sym(&out.api.read_next_header, "archive_read_next_header");
    sym(&out.api.read_data, "archive_read_data");
    sym(&out.api.read_free, "archive_read_free");
    sym(&out.api.error_string, "archive_error_string");
    sym(&out.api.entry_pathname, "archive_entry_pathname");
    sym(&out.api.entry_symlink, "archive_entry_symlink");
    sym(&out.api.entry_hardlink, "archive_entry_hardlink");
    sym(&out.api.entry_filetype, "archive_entry_filetype");
    sym(&out.api.entry_size, "archive_entry_size");
    sym(&out.api.entry_size_is_set, "archive_entry_size_is_set");
    return out;
  }();
  return loaded;
}

}  // namespace

StatusOr<const ArchiveApi*> LoadArchive() {
  const LoadedArchive& loaded = Loaded();
  if (!loaded.error.empty()) return Unavailable(loaded.error);
  return &loaded.api;
}

}  // namespace quiver::storage
