#include "control/log_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace quiver::control {
namespace {

namespace fs = std::filesystem;

class LogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("quiver_log_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
};

TEST_F(LogFileTest, RotatesPastTheCapAndTheWriterContinuesAtTheStart) {
  const std::string path = (dir_ / "replica.log").string();
  // The replica's own descriptor, as posix_spawn gives it: O_APPEND.
  const int writer = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(writer, 0);
  const std::string old_text(2000, 'a');
  ASSERT_EQ(::write(writer, old_text.data(), old_text.size()), 2000);

  auto rotated = RotateLogIfLarger(path, 1000);
  ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
  EXPECT_TRUE(*rotated);
  EXPECT_EQ(Read(path + ".1"), old_text);
  EXPECT_EQ(fs::file_size(path), 0u);

  ASSERT_EQ(::write(writer, "new line\n", 9), 9);
  ::close(writer);
  EXPECT_EQ(Read(path), "new line\n") << "writes after rotation must not leave a hole";

  // Under the cap: nothing happens; the previous .1 stays.
  auto again = RotateLogIfLarger(path, 1000);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(Read(path + ".1"), old_text);
}

TEST_F(LogFileTest, MissingLogIsNotAnError) {
  auto rotated = RotateLogIfLarger((dir_ / "absent.log").string(), 10);
  ASSERT_TRUE(rotated.ok());
  EXPECT_FALSE(*rotated);
  EXPECT_EQ(ReadLogTail((dir_ / "absent.log").string(), 5), "");
}

TEST_F(LogFileTest, TailReturnsTheLastLines) {
  const fs::path path = dir_ / "tail.log";
  {
    std::ofstream out(path);
    for (int i = 1; i <= 10; ++i) out << "line " << i << "\n";
  }
  EXPECT_EQ(ReadLogTail(path.string(), 3), "line 8\nline 9\nline 10");
  EXPECT_EQ(ReadLogTail(path.string(), 100).substr(0, 7), "line 1\n");
  {
    std::ofstream out(path, std::ios::app);
    out << "partial";
  }
  EXPECT_EQ(ReadLogTail(path.string(), 2), "line 10\npartial");
  // Only the last max_bytes are read.
  EXPECT_EQ(ReadLogTail(path.string(), 5, 10), "10\npartial");
}

}  // namespace
}  // namespace quiver::control
