#include "observe/process_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "observe/metrics_registry.h"

namespace quiver::observe {
namespace {

// A real line's shape, with a command name holding a space and a parenthesis.
constexpr std::string_view kStat =
    "2756 (my (cmd) x) R 2754 2754 30873 0 -1 4194304 99 0 0 0 250 50 0 0 20 0 7 0 1261631 "
    "3133440 385 18446744073709551615 94786094600192 94786094620073 0\n";

TEST(ProcessMetrics, ParsesProcStat) {
  auto s = ParseProcStat(kStat, /*ticks_per_second=*/100, /*page_size=*/4096,
                         /*boot_time=*/1700000000);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 3.0);  // (250 + 50) ticks / 100
  EXPECT_DOUBLE_EQ(s->resident_bytes, 385.0 * 4096);
  EXPECT_DOUBLE_EQ(s->virtual_bytes, 3133440);
  EXPECT_NEAR(s->start_time_seconds, 1700000000 + 12616.31, 1e-6);
}

TEST(ProcessMetrics, RejectsTruncatedStat) {
  EXPECT_FALSE(ParseProcStat("12 (x) R 1 2 3", 100, 4096, 0).ok());
  EXPECT_FALSE(ParseProcStat("no parenthesis", 100, 4096, 0).ok());
}

TEST(ProcessMetrics, BootTime) {
  auto b = ParseBootTime("cpu  1 2 3\nintr 5\nbtime 1795918234\nprocesses 9\n");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, 1795918234);
  EXPECT_FALSE(ParseBootTime("cpu 1\n").ok());
}

// The collector reads this very process: every standard name is there with a plausible value.
TEST(ProcessMetrics, CollectorWritesTheStandardNames) {
  MetricsRegistry r;
  AddProcessMetrics(&r);
  std::string text = r.Scrape();
  for (const char* name :
       {"# TYPE process_cpu_seconds_total counter", "# TYPE process_resident_memory_bytes gauge",
        "# TYPE process_virtual_memory_bytes gauge", "# TYPE process_start_time_seconds gauge",
        "# TYPE process_open_fds gauge", "# TYPE process_max_fds gauge"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name << " missing from\n" << text;
  }
  auto value = [&](const std::string& name) {
    size_t at = text.find("\n" + name + " ");
    EXPECT_NE(at, std::string::npos) << name;
    return std::stod(text.substr(at + name.size() + 2));
  };
  EXPECT_GT(value("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(value("process_virtual_memory_bytes"), value("process_resident_memory_bytes"));
  EXPECT_GE(value("process_open_fds"), 3);
  double now = static_cast<double>(time(nullptr));
  EXPECT_LE(value("process_start_time_seconds"), now + 1);
  EXPECT_GT(value("process_start_time_seconds"), now - 3600);
}

}  // namespace
}  // namespace quiver::observe
