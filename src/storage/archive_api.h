// ArchiveApi: the libarchive functions the storage initializer uses to unpack .tar.gz, .tgz and
// .zip models, loaded with dlopen("libarchive.so.13") on first use rather than linked, so that a
// server that never unpacks an archive does not map libarchive and its compression libraries.
// Loaded once per process, never unloaded, immutable afterwards: safe from any thread.
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "common/status.h"

namespace quiver::storage {

struct ArchiveApi {
  struct archive* (*read_new)();
  int (*read_support_filter_all)(struct archive*);
  int (*read_support_format_tar)(struct archive*);
  int (*read_support_format_zip)(struct archive*);
  int (*read_support_format_gnutar)(struct archive*);
  int (*read_open_filename)(struct archive*, const char*, size_t);
  int (*read_next_header)(struct archive*, struct archive_entry**);
  la_ssize_t (*read_data)(struct archive*, void*, size_t);
  int (*read_free)(struct archive*);
  const char* (*error_string)(struct archive*);
  const char* (*entry_pathname)(struct archive_entry*);
  const char* (*entry_symlink)(struct archive_entry*);
  const char* (*entry_hardlink)(struct archive_entry*);
  __LA_MODE_T (*entry_filetype)(struct archive_entry*);
  la_int64_t (*entry_size)(struct archive_entry*);
  int (*entry_size_is_set)(struct archive_entry*);
};

// The loaded table, or kUnavailable naming libarchive.so.13 and the Debian package.
StatusOr<const ArchiveApi*> LoadArchive();

}  // namespace quiver::storage
