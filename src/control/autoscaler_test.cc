#include "control/autoscaler.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

namespace quiver::control {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A gateway stand-in: `present` requests are in the revision at all times, integrated exactly
// over the injected clock.
class FakeGateway {
 public:
  explicit FakeGateway(Clock::time_point* now) : now_(now), last_(*now) {}
  void set_present(double present) {
    Advance();
    present_ = present;
  }
  std::vector<gateway::RevisionStats> Snapshot() {
    Advance();
    gateway::RevisionStats s;
    s.revision = ref;
    s.queued = static_cast<int64_t>(present_);
    s.request_seconds = integral_;
    s.arrivals = static_cast<uint64_t>(integral_);
    s.at = *now_;
    return {s};
  }
  gateway::RevisionRef ref{"default", "iris", gateway::Component::kPredictor,
                           "iris-predictor-00001"};

 private:
  void Advance() {
    integral_ += present_ * std::chrono::duration<double>(*now_ - last_).count();
    last_ = *now_;
  }
  Clock::time_point* now_;
  Clock::time_point last_;
  double present_ = 0;
  double integral_ = 0;
};

class AutoscalerTest : public ::testing::Test {
 protected:
  AutoscalerTest() : gateway_(&now_) {
    AutoscalerOptions options;
    options.clock = [this] { return now_; };
    autoscaler_ = std::make_unique<Autoscaler>(
        options, [this] { return gateway_.Snapshot(); },
        [this](const gateway::RevisionRef& ref) {
          std::lock_guard<std::mutex> lock(mu_);
          changed_.push_back(ref);
        });
  }

  RevisionScaleInput Input(int min_replicas, int current, int ready) {
    autoscale::ScalingInputs in;
    in.min_replicas = min_replicas;
    in.annotations["autoscaling.knative.dev/target"] = "10";  // 7 per replica at 70%
    in.annotations["autoscaling.knative.dev/window"] = "6s";
    auto config = autoscale::ResolveConfig(in);
    EXPECT_TRUE(config.ok()) << config.status().ToString();
    autoscale::KpaConfig c = *config;
    c.scale_to_zero_grace = 2s;
    return {gateway_.ref, c, "k" + std::to_string(min_replicas), true, current, ready};
  }

  // Samples each second and ticks each two seconds for `seconds`.
  void Run(int seconds) {
    for (int i = 0; i < seconds; ++i) {
      now_ += 1s;
      autoscaler_->SampleOnce();
      if (i % 2 == 1) autoscaler_->TickOnce();
    }
  }

  Clock::time_point now_ = Clock::time_point() + 1000s;
  FakeGateway gateway_;
  std::vector<gateway::RevisionRef> Changed() {
    std::lock_guard<std::mutex> lock(mu_);
    return changed_;
  }
  void ClearChanged() {
    std::lock_guard<std::mutex> lock(mu_);
    changed_.clear();
  }

  std::mutex mu_;
  std::vector<gateway::RevisionRef> changed_;  // guarded by mu_
  std::unique_ptr<Autoscaler> autoscaler_;
};

TEST_F(AutoscalerTest, NewRevisionStartsAtItsInitialScale) {
  EXPECT_EQ(autoscaler_->Replicas(Input(1, 0, 0)), 1);
  EXPECT_TRUE(autoscaler_->LastDecision(gateway_.ref).has_value());
}

TEST_F(AutoscalerTest, SustainedConcurrencyScalesToCeilOfLoadOverTarget) {
  EXPECT_EQ(autoscaler_->Replicas(Input(1, 1, 1)), 1);
  gateway_.set_present(21);  // 21 / 7 per replica = 3 replicas
  Run(8);
  ASSERT_FALSE(Changed().empty());
  EXPECT_EQ(Changed().back(), gateway_.ref);
  EXPECT_EQ(autoscaler_->Replicas(Input(1, 3, 3)), 3);
  // The reconciler's counts do not restart the autoscaler: same config key.
  EXPECT_EQ(autoscaler_->LastDecision(gateway_.ref)->replicas, 3);
}

TEST_F(AutoscalerTest, IdleRevisionGoesToZeroAfterTheGraceAndDemandBringsItBack) {
  EXPECT_EQ(autoscaler_->Replicas(Input(0, 1, 1)), 1);
  Run(20);  // no traffic: the 6 s window empties, then the 2 s grace passes
  EXPECT_EQ(autoscaler_->Replicas(Input(0, 1, 1)), 0);
  ClearChanged();
  // A request arrives for the revision at zero: the activator's poke decides at once.
  gateway_.set_present(1);
  autoscaler_->Demand(gateway_.ref);
  autoscaler_->Start();  // the thread handles the pending demand without waiting for a tick
  for (int i = 0; i < 400 && Changed().empty(); ++i) std::this_thread::sleep_for(5ms);
  autoscaler_->Stop();
  ASSERT_EQ(Changed().size(), 1u);
  EXPECT_GE(autoscaler_->Replicas(Input(0, 0, 0)), 1);
}

TEST_F(AutoscalerTest, RetainForgetsRevisionsNoLongerRun) {
  (void)autoscaler_->Replicas(Input(1, 1, 1));
  autoscaler_->Retain("default/iris/", {Autoscaler::Key(gateway_.ref)});
  EXPECT_TRUE(autoscaler_->LastDecision(gateway_.ref).has_value());
  autoscaler_->Retain("default/other/", {});
  EXPECT_TRUE(autoscaler_->LastDecision(gateway_.ref).has_value());
  autoscaler_->Retain("default/iris/", {});
  EXPECT_FALSE(autoscaler_->LastDecision(gateway_.ref).has_value());
}

}  // namespace
}  // namespace quiver::control
