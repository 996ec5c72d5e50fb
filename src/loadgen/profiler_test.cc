#include "loadgen/profiler.h"

#include <gtest/gtest.h>

#include <deque>

namespace quiver::loadgen {
namespace {

using namespace std::chrono_literals;

// Time moves only when the profiler sleeps.
class FakeClock : public ProfileClock {
 public:
  SteadyClock::time_point Now() override { return now_; }
  void SleepUntil(SteadyClock::time_point t) override {
    if (t > now_) now_ = t;
  }

 private:
  SteadyClock::time_point now_{};
};

// Hands out one scripted window per Take: `n` requests of `latency_us` each, and errors.
class ScriptedEngine : public LoadEngine {
 public:
  struct Window {
    int requests;
    int64_t latency_us;
    int errors = 0;
  };
  explicit ScriptedEngine(std::deque<Window> script) : script_(std::move(script)) {}

  Status Start(const LoadLevel& level) override {
    started_ = level;
    return Status::Ok();
  }
  WindowSamples Take() override {
    WindowSamples s;
    if (script_.empty()) return s;
    Window w = script_.front();
    script_.pop_front();
    // A spread of latencies around the mean so that percentiles differ.
    for (int i = 0; i < w.requests; ++i) {
      s.latencies_ns.push_back((w.latency_us * 1000) + (i % 10 - 5) * 1000);
    }
    s.errors = w.errors;
    if (w.errors > 0) {
      s.error_kinds["HTTP 503"] = w.errors;
      s.first_error = "HTTP 503: busy";
    }
    ++takes;
    return s;
  }
  void Peek(uint64_t* completed, uint64_t* errors) const override {
    *completed = 0;
    *errors = 0;
  }
  void Stop() override { ++stops; }

  LoadLevel started_;
  int takes = 0;
  int stops = 0;

 private:
  std::deque<Window> script_;
};

// Cumulative histograms that grow by `per_window` requests of fixed queue/compute time.
class FakeServer : public ServerTimeSource {
 public:
  std::optional<ServerTimeSnapshot> Scrape() override {
    ServerTimeSnapshot s;
    s.families.push_back({"q_seconds", ServerStage::kQueue, queue_us_total_, count_});
    s.families.push_back({"c_seconds", ServerStage::kCompute, compute_us_total_, count_});
    // The next scrape sees the requests of one more window, slower each time.
    ++scrapes;
    count_ += 1000;
    queue_us_total_ += 1000 * 10.0 * scrapes;
    compute_us_total_ += 1000 * 50.0;
    return s;
  }
  int scrapes = 0;

 private:
  double count_ = 0, queue_us_total_ = 0, compute_us_total_ = 0;
};

ProfileOptions Options() {
  ProfileOptions o;
  o.interval = 1000ms;
  o.max_trials = 10;
  o.batch_size = 4;
  return o;
}

TEST(Profiler, StopsAtTheFirstStableWindowAndMergesTheLastThree) {
  // Window 1 is a warm-up outlier; 2-4 agree within 10%.
  ScriptedEngine engine({{100, 900}, {1000, 100}, {1050, 104}, {980, 98}, {1000, 100}});
  FakeClock clock;
  auto r =
      ProfileLevel(engine, {LoadLevel::Mode::kConcurrency, 8}, Options(), nullptr, nullptr, &clock);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->stable);
  EXPECT_EQ(r->windows, 4);
  EXPECT_EQ(engine.takes, 4);
  EXPECT_EQ(engine.stops, 1);
  EXPECT_EQ(engine.started_.concurrency, 8);
  EXPECT_EQ(r->requests, 1000u + 1050u + 980u);
  EXPECT_DOUBLE_EQ(r->seconds, 3.0);
  EXPECT_NEAR(r->requests_per_sec, 3030 / 3.0, 1e-9);
  EXPECT_NEAR(r->infer_per_sec, 4 * 3030 / 3.0, 1e-9);  // batch 4
  EXPECT_LE(r->latency.p50_us, r->latency.p90_us);
  EXPECT_LE(r->latency.p90_us, r->latency.p95_us);
  EXPECT_LE(r->latency.p95_us, r->latency.p99_us);
  EXPECT_GT(r->latency.avg_us, 95);
  EXPECT_LT(r->latency.avg_us, 106);
  EXPECT_FALSE(r->server_queue_us.has_value());
}

TEST(Profiler, UnstableRunsEndAfterMaxTrials) {
  ScriptedEngine engine({{100, 100}, {200, 100}, {400, 100}, {800, 100}, {1600, 100}});
  FakeClock clock;
  ProfileOptions o = Options();
  o.max_trials = 5;
  auto r = ProfileLevel(engine, {}, o, nullptr, nullptr, &clock);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->stable);
  EXPECT_EQ(r->windows, 5);
  EXPECT_EQ(r->requests, 400u + 800u + 1600u);  // still the last three
}

TEST(Profiler, ErrorsCountOverEveryWindowAndAllFailedStops) {
  ScriptedEngine engine({{1000, 100, 2}, {1000, 100}, {0, 0, 50}, {1000, 100}});
  FakeClock clock;
  auto r = ProfileLevel(engine, {}, Options(), nullptr, nullptr, &clock);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->all_failed);
  EXPECT_EQ(r->windows, 3);
  EXPECT_EQ(r->errors, 52u);
  EXPECT_EQ(r->error_kinds.at("HTTP 503"), 52u);
  EXPECT_EQ(r->first_error, "HTTP 503: busy");
}

TEST(Profiler, ServerSplitIsOverTheMergedWindows) {
  ScriptedEngine engine({{1000, 100}, {1000, 100}, {1000, 100}});
  FakeClock clock;
  FakeServer server;
  auto r = ProfileLevel(engine, {}, Options(), &server, nullptr, &clock);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(server.scrapes, 4);  // start + one per window
  ASSERT_TRUE(r->server_queue_us && r->server_compute_us);
  // Queue: 10, 20, 30 µs per request in windows 1-3: 20 on average.
  EXPECT_DOUBLE_EQ(*r->server_queue_us, 20);
  EXPECT_DOUBLE_EQ(*r->server_compute_us, 50);
}

TEST(Profiler, ReportsProgressWithinWindows) {
  struct Recorder : ProfileObserver {
    void OnProgress(const LoadLevel&, int window, double elapsed_s, uint64_t, uint64_t) override {
      ++progress;
      last_window = window;
      EXPECT_LT(elapsed_s, 1.0);
    }
    void OnWindow(const LoadLevel&, int, const WindowStats& w, bool) override {
      ++windows;
      EXPECT_DOUBLE_EQ(w.seconds, 1.0);
    }
    int progress = 0, windows = 0, last_window = 0;
  } observer;
  ScriptedEngine engine({{1000, 100}, {1000, 100}, {1000, 100}});
  FakeClock clock;
  auto r = ProfileLevel(engine, {}, Options(), nullptr, &observer, &clock);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(observer.windows, 3);
  EXPECT_EQ(observer.progress, 3 * 3);  // at 250, 500, 750 ms of each 1 s window
  EXPECT_EQ(observer.last_window, 3);
}

}  // namespace
}  // namespace quiver::loadgen
