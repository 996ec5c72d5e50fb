#include "storage/model_cache.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include "storage/sha256.h"
#include "storage/test_archives.h"

namespace quiver::storage {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

TEST(ModelCacheTest, MissThenHitForTheSameValidator) {
  TempDir tmp;
  auto cache = ModelCache::Open(tmp.path() / "cache");
  ASSERT_TRUE(cache.ok());
  const std::string uri = "s3://b/models/iris";
  EXPECT_FALSE((*cache)->Find(uri, "etag-1").has_value());
  auto lock = (*cache)->Lock(uri);
  ASSERT_TRUE(lock.ok());
  auto staging = (*cache)->Stage(uri);
  ASSERT_TRUE(staging.ok());
  WriteFile(*staging / "model" / "model.bst", "v1");
  // Not visible before the commit: a crash here leaves nothing that looks complete.
  EXPECT_FALSE((*cache)->Find(uri, "etag-1").has_value());
  auto committed = (*cache)->Commit(*staging, uri, "etag-1");
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  auto hit = (*cache)->Find(uri, "etag-1");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(*hit, *committed);
  EXPECT_EQ(ReadFile(*hit / "model.bst"), "v1");
  // Only the model's files are in the model directory; the record sits beside it.
  EXPECT_TRUE(fs::exists(hit->parent_path() / "source.json"));
  EXPECT_EQ(std::distance(fs::directory_iterator(*hit), fs::directory_iterator()), 1);
  // A changed source (new validator) or another URI is a miss.
  EXPECT_FALSE((*cache)->Find(uri, "etag-2").has_value());
  EXPECT_FALSE((*cache)->Find("s3://b/models/other", "etag-1").has_value());
}

TEST(ModelCacheTest, EntryNamesDependOnUriAndValidator) {
  EXPECT_NE(ModelCache::EntryName("u", "v1"), ModelCache::EntryName("u", "v2"));
  EXPECT_NE(ModelCache::EntryName("u1", "v"), ModelCache::EntryName("u2", "v"));
  EXPECT_EQ(ModelCache::EntryName("u", "v"), ModelCache::EntryName("u", "v"));
  EXPECT_EQ(ModelCache::EntryName("u", "v").size(), 64u);
}

TEST(ModelCacheTest, CommitReplacesAnEntryWithTheSameName) {
  TempDir tmp;
  auto cache = ModelCache::Open(tmp.path());
  ASSERT_TRUE(cache.ok());
  for (const char* content : {"first", "second"}) {
    auto staging = (*cache)->Stage("http://h/m.bin");
    ASSERT_TRUE(staging.ok());
    WriteFile(*staging / "model" / "m.bin", content);
    ASSERT_TRUE((*cache)->Commit(*staging, "http://h/m.bin", "").ok());
  }
  auto hit = (*cache)->Find("http://h/m.bin", "");
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(ReadFile(*hit / "m.bin"), "second");
}

TEST(ModelCacheTest, LockRemovesOrphanedStagingOfThatUriOnly) {
  TempDir tmp;
  auto cache = ModelCache::Open(tmp.path());
  ASSERT_TRUE(cache.ok());
  auto orphan = (*cache)->Stage("http://h/a.bin");  // as if the process had crashed
  auto other = (*cache)->Stage("http://h/b.bin");
  ASSERT_TRUE(orphan.ok() && other.ok());
  WriteFile(*orphan / "model" / "a.bin", "half");
  {
    auto lock = (*cache)->Lock("http://h/a.bin");
    ASSERT_TRUE(lock.ok());
  }
  EXPECT_FALSE(fs::exists(*orphan));
  EXPECT_TRUE(fs::exists(*other));
}

TEST(ModelCacheTest, LockExcludesOthersUntilReleased) {
  TempDir tmp;
  auto cache = ModelCache::Open(tmp.path());
  ASSERT_TRUE(cache.ok());
  // What another thread or process does: open the URI's lock file and try to lock it.
  fs::path lock_file = tmp.path() / "locks" / (Sha256Hex("u") + ".lock");
  auto try_lock = [&] {
    int fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT, 0644);
    bool got = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);
    return got;
  };
  {
    auto held = (*cache)->Lock("u");
    ASSERT_TRUE(held.ok());
    EXPECT_FALSE(try_lock());
    ModelCache::UriLock moved = std::move(*held);  // moving keeps it held
    EXPECT_FALSE(try_lock());
  }
  EXPECT_TRUE(try_lock());
}

TEST(ModelCacheTest, OpenFailsClearlyOnAFile) {
  TempDir tmp;
  WriteFile(tmp.path() / "file", "x");
  auto cache = ModelCache::Open(tmp.path() / "file");
  EXPECT_EQ(cache.status().code(), StatusCode::kInternal);
  EXPECT_THAT(cache.status().message(), ::testing::HasSubstr((tmp.path() / "file").string()));
  EXPECT_EQ(ModelCache::Open("").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace quiver::storage
