#include "storage/archive_extract.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/test_archives.h"

namespace quiver::storage {
namespace {

namespace fs = std::filesystem;
using namespace testing;  // NOLINT: test helpers
using ::testing::HasSubstr;

Status Extract(const fs::path& archive, const fs::path& dest, ExtractLimits limits = {}) {
  return ExtractArchive(archive, dest, archive.filename().string(), limits, {}, nullptr);
}

class ArchiveExtractTest : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path ArchivePath() const { return tmp_.path() / ("model." + GetParam()); }
  fs::path Dest() const { return tmp_.path() / "out"; }
  TempDir tmp_;
};

TEST_P(ArchiveExtractTest, UnpacksFilesDirectoriesAndSafeLinks) {
  ASSERT_TRUE(WriteArchive(
      ArchivePath(), GetParam(),
      {Dir("model/"), File("model/model.bst", "weights"),
       File("./config.yaml", "format: xgboost\n"), File("model/sub/deep.txt", "deep"),
       Symlink("model/latest", "model.bst"), Symlink("model/sub/up", "../model.bst")}));
  std::vector<std::string> seen;
  Status s = ExtractArchive(
      ArchivePath(), Dest(), "model", {}, [&](const std::string& f) { seen.push_back(f); },
      nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadFile(Dest() / "model/model.bst"), "weights");
  EXPECT_EQ(ReadFile(Dest() / "config.yaml"), "format: xgboost\n");
  EXPECT_EQ(ReadFile(Dest() / "model/sub/deep.txt"), "deep");
  EXPECT_EQ(ReadFile(Dest() / "model/latest"), "weights");
  EXPECT_EQ(ReadFile(Dest() / "model/sub/up"), "weights");
  EXPECT_THAT(seen, ::testing::Contains("model/model.bst"));
}

TEST_P(ArchiveExtractTest, RefusesParentDirectoryEntries) {
  ASSERT_TRUE(
      WriteArchive(ArchivePath(), GetParam(), {File("ok.txt", "x"), File("../evil.txt", "pwned")}));
  Status s = Extract(ArchivePath(), Dest());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'../evil.txt'"));
  EXPECT_FALSE(fs::exists(tmp_.path() / "evil.txt"));
}

TEST_P(ArchiveExtractTest, RefusesNestedParentDirectoryEntries) {
  ASSERT_TRUE(WriteArchive(ArchivePath(), GetParam(), {File("a/../../evil.txt", "pwned")}));
  Status s = Extract(ArchivePath(), Dest());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("a/../../evil.txt"));
  EXPECT_FALSE(fs::exists(tmp_.path() / "evil.txt"));
}

TEST_P(ArchiveExtractTest, RefusesAbsolutePaths) {
  fs::path outside = tmp_.path() / "abs-target.txt";
  ASSERT_TRUE(WriteArchive(ArchivePath(), GetParam(), {File(outside.string(), "pwned")}));
  Status s = Extract(ArchivePath(), Dest());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(outside.string()));
  EXPECT_FALSE(fs::exists(outside));
}

TEST_P(ArchiveExtractTest, RefusesSymlinksPointingOutside) {
  ASSERT_TRUE(WriteArchive(ArchivePath(), GetParam(), {Symlink("escape", "../../etc")}));
  Status s = Extract(ArchivePath(), Dest());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("symlink 'escape -> ../../etc'"));
}

TEST_P(ArchiveExtractTest, RefusesAbsoluteSymlinks) {
  ASSERT_TRUE(WriteArchive(ArchivePath(), GetParam(), {Symlink("passwd", "/etc/passwd")}));
  Status s = Extract(ArchivePath(), Dest());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'passwd'"));
  EXPECT_THAT(s.message(), HasSubstr("/etc/passwd"));
}

TEST_P(ArchiveExtractTest, RefusesChainedSymlinksThatEscape) {
  // Each link looks harmless lexically; together, z resolves above the directory.
  ASSERT_TRUE(
      WriteArchive(ArchivePath(), GetParam(),
                   {Dir("a/"), Dir("d/"), Symlink("d/x", "../a"), Symlink("z", "d/x/../..")}));
  Status s = Extract(ArchivePath(), Dest());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'z -> d/x/../..'"));
}

TEST_P(ArchiveExtractTest, RefusesWritingThroughASymlink) {
  fs::create_directories(tmp_.path() / "victim");
  ASSERT_TRUE(WriteArchive(ArchivePath(), GetParam(),
                           {Symlink("link", "sub"), Dir("sub/"), File("link/file.txt", "x")}));
  Status s = Extract(ArchivePath(), Dest());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'link/file.txt' goes through the symlink 'link'"));
}

INSTANTIATE_TEST_SUITE_P(Formats, ArchiveExtractTest, ::testing::Values("tar.gz", "zip"),
                         [](const auto& info) { return info.param == "zip" ? "zip" : "targz"; });

TEST(ArchiveExtractTarTest, RefusesHardlinksOutsideAndAcceptsInside) {
  TempDir tmp;
  fs::path bad = tmp.path() / "bad.tar.gz";
  ASSERT_TRUE(WriteArchive(bad, "tar.gz", {Hardlink("shadow", "../../etc/shadow")}));
  Status s = Extract(bad, tmp.path() / "out1");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("hard link 'shadow'"));

  fs::path good = tmp.path() / "good.tar.gz";
  ASSERT_TRUE(WriteArchive(good, "tar.gz", {File("a.bin", "data"), Hardlink("b.bin", "a.bin")}));
  ASSERT_TRUE(Extract(good, tmp.path() / "out2").ok());
  EXPECT_EQ(ReadFile(tmp.path() / "out2" / "b.bin"), "data");
}

TEST(ArchiveExtractTarTest, RefusesFifos) {
  TempDir tmp;
  fs::path path = tmp.path() / "fifo.tar.gz";
  ASSERT_TRUE(WriteArchive(path, "tar.gz", {{TestEntry::kFifo, "pipe", "", ""}}));
  Status s = Extract(path, tmp.path() / "out");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'pipe'"));
}

TEST(ArchiveExtractTarTest, CorruptArchiveNamesTheFile) {
  TempDir tmp;
  fs::path path = tmp.path() / "broken.tar.gz";
  // A gzip header (with a NUL byte) followed by garbage.
  static const char kBroken[] = "\x1f\x8b\x08\x00garbage that is not gzip at all";
  WriteFile(path, std::string(kBroken, sizeof(kBroken) - 1));
  Status s = ExtractArchive(path, tmp.path() / "out", "http://h/broken.tar.gz", {}, {}, nullptr);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("archive 'http://h/broken.tar.gz' is corrupt"));

  fs::path text = tmp.path() / "plain.zip";
  WriteFile(text, "just text, no archive");
  Status t = Extract(text, tmp.path() / "out2");
  EXPECT_EQ(t.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(t.message(), HasSubstr("plain.zip"));
}

TEST(ArchiveExtractTarTest, TruncatedArchiveIsAnError) {
  TempDir tmp;
  fs::path path = tmp.path() / "m.tar.gz";
  ASSERT_TRUE(WriteArchive(path, "tar.gz", {File("big.bin", std::string(200000, 'q'))}));
  std::string bytes = ReadFile(path);
  WriteFile(path, bytes.substr(0, bytes.size() / 2));
  Status s = Extract(path, tmp.path() / "out");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("m.tar.gz"));
}

TEST(ArchiveExtractTarTest, SizeLimitStopsArchiveBombs) {
  TempDir tmp;
  fs::path path = tmp.path() / "bomb.tar.gz";
  ASSERT_TRUE(
      WriteArchive(path, "tar.gz",
                   {File("a.bin", std::string(4000, 'a')), File("b.bin", std::string(4000, 'b'))}));
  ExtractLimits limits;
  limits.max_total_bytes = 6000;
  Status s = Extract(path, tmp.path() / "out", limits);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("'b.bin'"));
  limits.max_total_bytes = 8000;
  EXPECT_TRUE(Extract(path, tmp.path() / "out2", limits).ok());
  limits.max_entries = 1;
  Status e = Extract(path, tmp.path() / "out3", limits);
  EXPECT_EQ(e.code(), StatusCode::kResourceExhausted);
}

TEST(SafeRelativePathTest, Cases) {
  EXPECT_TRUE(IsSafeRelativePath("a/b.txt"));
  EXPECT_TRUE(IsSafeRelativePath("./a"));
  EXPECT_TRUE(IsSafeRelativePath("a..b/c"));
  EXPECT_FALSE(IsSafeRelativePath(""));
  EXPECT_FALSE(IsSafeRelativePath("/a"));
  EXPECT_FALSE(IsSafeRelativePath(".."));
  EXPECT_FALSE(IsSafeRelativePath("a/../../b"));
  EXPECT_FALSE(IsSafeRelativePath("a/.."));
}

}  // namespace
}  // namespace quiver::storage
