#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "autoscale/kpa.h"

namespace quiver::autoscale {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kA = "autoscaling.knative.dev/";

ScalingInputs WithAnnotations(std::map<std::string, std::string> short_keys) {
  ScalingInputs in;
  for (auto& [k, v] : short_keys) in.annotations[kA + k] = v;
  return in;
}

KpaConfig Resolve(const ScalingInputs& in, const KpaConfig& defaults = {}) {
  StatusOr<KpaConfig> c = ResolveConfig(in, defaults);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : KpaConfig{};
}

std::string Error(const ScalingInputs& in, const KpaConfig& defaults = {}) {
  StatusOr<KpaConfig> c = ResolveConfig(in, defaults);
  EXPECT_FALSE(c.ok());
  if (c.ok()) return "";
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  return c.status().message();
}

std::string AnnotationError(const std::string& key, const std::string& value) {
  return Error(WithAnnotations({{key, value}}));
}

TEST(ResolveConfigTest, KnativeAndKServeDefaults) {
  KpaConfig c = Resolve(ScalingInputs{});
  EXPECT_EQ(c.metric, Metric::kConcurrency);
  EXPECT_EQ(c.total_target, 100);
  EXPECT_EQ(c.target_utilization, 0.7);
  EXPECT_EQ(c.target, 70);  // 100 × 70 %
  EXPECT_EQ(c.container_concurrency, 0);
  EXPECT_EQ(c.stable_window, Millis(60'000));
  EXPECT_EQ(c.panic_window, Millis(6'000));
  EXPECT_EQ(c.panic_threshold, 2.0);
  EXPECT_EQ(c.max_scale_up_rate, 1000);
  EXPECT_EQ(c.max_scale_down_rate, 2);
  EXPECT_EQ(c.min_scale, 1);  // KServe's minReplicas default
  EXPECT_EQ(c.max_scale, 0);
  EXPECT_EQ(c.initial_scale, 1);
  EXPECT_EQ(c.activation_scale, 1);
  EXPECT_EQ(c.scale_down_delay, Millis(0));
  EXPECT_EQ(c.scale_to_zero_grace, Millis(30'000));
  EXPECT_EQ(c.scale_to_zero_retention, Millis(0));
  EXPECT_EQ(c.target_burst_capacity, 211);
  EXPECT_TRUE(c.enable_scale_to_zero);
}

TEST(ResolveConfigTest, ClusterDefaultsComeFromTheDefaultsArgument) {
  KpaConfig defaults;
  defaults.total_target = 10;
  defaults.target_utilization = 0.5;
  defaults.stable_window = Millis(120'000);
  defaults.panic_window = Millis(24'000);  // 20 %
  defaults.scale_to_zero_grace = Millis(5'000);
  defaults.enable_scale_to_zero = false;
  KpaConfig c = Resolve(ScalingInputs{}, defaults);
  EXPECT_EQ(c.target, 5);
  EXPECT_EQ(c.panic_window, Millis(24'000));
  EXPECT_EQ(c.scale_to_zero_grace, Millis(5'000));
  EXPECT_FALSE(c.enable_scale_to_zero);
  // The panic percentage (20 %) follows a per-revision window: 30 s → 6 s.
  EXPECT_EQ(Resolve(WithAnnotations({{"window", "30s"}}), defaults).panic_window, Millis(6'000));
}

TEST(ResolveConfigTest, ContainerConcurrencyIsTheTotalAndCapsTheTarget) {
  ScalingInputs in;
  in.container_concurrency = 10;
  KpaConfig c = Resolve(in);
  EXPECT_EQ(c.container_concurrency, 10);
  EXPECT_EQ(c.total_target, 10);
  EXPECT_EQ(c.target, 7);
  // A larger target annotation is capped at containerConcurrency: min(50, 10) × 0.7.
  in.annotations[std::string(kA) + "target"] = "50";
  EXPECT_EQ(Resolve(in).target, 7);
  // A smaller one wins: 5 × 0.7.
  in.annotations[std::string(kA) + "target"] = "5";
  EXPECT_DOUBLE_EQ(Resolve(in).target, 3.5);
}

TEST(ResolveConfigTest, TargetFromAnnotationOrScaleTarget) {
  EXPECT_EQ(Resolve(WithAnnotations({{"target", "50"}})).target, 35);
  ScalingInputs in;
  in.scale_target = 20;
  EXPECT_EQ(Resolve(in).total_target, 20);
  EXPECT_EQ(Resolve(in).target, 14);
  // The annotation wins over scaleTarget.
  in.annotations[std::string(kA) + "target"] = "30";
  EXPECT_EQ(Resolve(in).target, 21);
  // Utilisation: 100 × 50 %.
  EXPECT_EQ(Resolve(WithAnnotations({{"target-utilization-percentage", "50"}})).target, 50);
  // The floor of 0.01 per replica: 0.01 × 0.7 would be 0.007.
  EXPECT_EQ(Resolve(WithAnnotations({{"target", "0.01"}})).target, 0.01);
}

TEST(ResolveConfigTest, RpsMetric) {
  ScalingInputs in;
  in.scale_metric = "rps";
  KpaConfig c = Resolve(in);
  EXPECT_EQ(c.metric, Metric::kRps);
  EXPECT_EQ(c.total_target, 200);
  EXPECT_EQ(c.target, 140);
  // containerConcurrency does not cap an rps target.
  in.container_concurrency = 10;
  in.scale_target = 500;
  EXPECT_EQ(Resolve(in).target, 350);
  // The metric annotation wins over scaleMetric.
  ScalingInputs by_annotation = WithAnnotations({{"metric", "rps"}});
  by_annotation.scale_metric = "concurrency";
  EXPECT_EQ(Resolve(by_annotation).metric, Metric::kRps);
  EXPECT_EQ(Resolve(WithAnnotations({{"metric", "concurrency"}})).target, 70);
}

TEST(ResolveConfigTest, WindowsAndPanicSettings) {
  KpaConfig c = Resolve(WithAnnotations({{"window", "120s"}}));
  EXPECT_EQ(c.stable_window, Millis(120'000));
  EXPECT_EQ(c.panic_window, Millis(12'000));
  EXPECT_EQ(Resolve(WithAnnotations({{"window", "1m30s"}})).stable_window, Millis(90'000));
  // round(45 s × 15 %) = round(6.75 s) = 7 s.
  c = Resolve(WithAnnotations({{"window", "45s"}, {"panic-window-percentage", "15"}}));
  EXPECT_EQ(c.panic_window, Millis(7'000));
  // 6 s × 1 % = 0.06 s: at least one bucket.
  c = Resolve(WithAnnotations({{"window", "6s"}, {"panic-window-percentage", "1"}}));
  EXPECT_EQ(c.panic_window, Millis(1'000));
  EXPECT_EQ(Resolve(WithAnnotations({{"panic-threshold-percentage", "150"}})).panic_threshold, 1.5);
}

TEST(ResolveConfigTest, ScaleBoundsAnnotationsWinOverFields) {
  ScalingInputs in;
  in.min_replicas = 0;
  in.max_replicas = 5;
  KpaConfig c = Resolve(in);
  EXPECT_EQ(c.min_scale, 0);
  EXPECT_EQ(c.max_scale, 5);
  in.annotations[std::string(kA) + "min-scale"] = "2";
  in.annotations[std::string(kA) + "maxScale"] = "8";  // Knative's older camelCase key
  c = Resolve(in);
  EXPECT_EQ(c.min_scale, 2);
  EXPECT_EQ(c.max_scale, 8);
  in.max_replicas = 0;
  in.annotations.clear();
  EXPECT_EQ(Resolve(in).max_scale, 0);  // 0: unbounded
}

TEST(ResolveConfigTest, OtherAnnotations) {
  ScalingInputs in = WithAnnotations({{"initial-scale", "0"},
                                      {"activation-scale", "3"},
                                      {"scale-down-delay", "30s"},
                                      {"scale-to-zero-pod-retention-period", "1m30s"},
                                      {"target-burst-capacity", "-1"},
                                      {"class", "kpa.autoscaling.knative.dev"},
                                      {"metric-aggregation-algorithm", "linear"}});
  in.min_replicas = 0;  // initial-scale 0 needs a minimum of 0
  in.annotations["serving.kserve.io/deploymentMode"] = "Serverless";  // not ours: ignored
  KpaConfig c = Resolve(in);
  EXPECT_EQ(c.initial_scale, 0);
  EXPECT_EQ(c.activation_scale, 3);
  EXPECT_EQ(c.scale_down_delay, Millis(30'000));
  EXPECT_EQ(c.scale_to_zero_retention, Millis(90'000));
  EXPECT_EQ(c.target_burst_capacity, -1);
  EXPECT_EQ(Resolve(WithAnnotations({{"scaleToZeroPodRetentionPeriod", "500ms"}}))
                .scale_to_zero_retention,
            Millis(500));
  EXPECT_EQ(Resolve(WithAnnotations({{"initial-scale", "4"}})).initial_scale, 4);
  EXPECT_EQ(Resolve(WithAnnotations({{"target-burst-capacity", "0"}})).target_burst_capacity, 0);
}

TEST(ResolveConfigTest, DurationErrors) {
  const std::string w = "annotation autoscaling.knative.dev/window: ";
  EXPECT_EQ(AnnotationError("window", "2s"), w + "expected a duration between 6s and 1h, got 2s");
  EXPECT_EQ(AnnotationError("window", "2h"), w + "expected a duration between 6s and 1h, got 2h");
  EXPECT_EQ(AnnotationError("window", "60"), w + "expected a duration between 6s and 1h, got 60");
  EXPECT_EQ(AnnotationError("window", "6500ms"), w + "expected whole seconds, got 6500ms");
  const std::string d = "annotation autoscaling.knative.dev/scale-down-delay: ";
  EXPECT_EQ(AnnotationError("scale-down-delay", "-1s"),
            d + "expected a duration between 0s and 1h, got -1s");
  EXPECT_EQ(AnnotationError("scale-down-delay", "1.5s"), d + "expected whole seconds, got 1.5s");
  EXPECT_EQ(AnnotationError("scale-to-zero-pod-retention-period", "61m"),
            "annotation autoscaling.knative.dev/scale-to-zero-pod-retention-period: expected a "
            "duration between 0s and 1h, got 61m");
}

TEST(ResolveConfigTest, NumberErrors) {
  EXPECT_EQ(AnnotationError("target", "0"),
            "annotation autoscaling.knative.dev/target: expected a number >= 0.01, got 0");
  EXPECT_EQ(AnnotationError("target", "many"),
            "annotation autoscaling.knative.dev/target: expected a number >= 0.01, got many");
  EXPECT_EQ(AnnotationError("target-utilization-percentage", "101"),
            "annotation autoscaling.knative.dev/target-utilization-percentage: expected a "
            "percentage between 1 and 100, got 101");
  EXPECT_EQ(AnnotationError("panic-window-percentage", "0.5"),
            "annotation autoscaling.knative.dev/panic-window-percentage: expected a percentage "
            "between 1 and 100, got 0.5");
  EXPECT_EQ(AnnotationError("panic-threshold-percentage", "100"),
            "annotation autoscaling.knative.dev/panic-threshold-percentage: expected a "
            "percentage between 110 and 1000, got 100");
  EXPECT_EQ(AnnotationError("target-burst-capacity", "-2"),
            "annotation autoscaling.knative.dev/target-burst-capacity: expected a number >= 0, "
            "or -1, got -2");
  EXPECT_EQ(AnnotationError("target", "nan"),
            "annotation autoscaling.knative.dev/target: expected a number >= 0.01, got nan");
}

TEST(ResolveConfigTest, IntegerErrors) {
  EXPECT_EQ(AnnotationError("min-scale", "-1"),
            "annotation autoscaling.knative.dev/min-scale: expected an integer >= 0, got -1");
  EXPECT_EQ(AnnotationError("max-scale", "1.5"),
            "annotation autoscaling.knative.dev/max-scale: expected an integer >= 0, got 1.5");
  EXPECT_EQ(AnnotationError("initial-scale", "x"),
            "annotation autoscaling.knative.dev/initial-scale: expected an integer >= 0, got x");
  EXPECT_EQ(AnnotationError("activation-scale", "0"),
            "annotation autoscaling.knative.dev/activation-scale: expected an integer >= 1, "
            "got 0");
  EXPECT_EQ(AnnotationError("max-scale", "99999999999"),
            "annotation autoscaling.knative.dev/max-scale: expected an integer >= 0, got "
            "99999999999");
}

TEST(ResolveConfigTest, BoundsErrors) {
  EXPECT_EQ(Error(WithAnnotations({{"min-scale", "3"}, {"max-scale", "2"}})),
            "annotation autoscaling.knative.dev/max-scale: 2 is less than the minimum 3 set by "
            "annotation autoscaling.knative.dev/min-scale");
  ScalingInputs fields;
  fields.min_replicas = 3;
  fields.max_replicas = 2;
  EXPECT_EQ(Error(fields), "maxReplicas: 2 is less than the minimum 3 set by minReplicas");
  // Knative needs allow-zero-initial-scale for 0; here the minimum must be 0.
  EXPECT_EQ(AnnotationError("initial-scale", "0"),
            "annotation autoscaling.knative.dev/initial-scale: 0 is allowed only when the "
            "minimum scale is 0, but minReplicas is 1");
}

TEST(ResolveConfigTest, MetricAndClassErrors) {
  EXPECT_EQ(AnnotationError("metric", "cpu"),
            "annotation autoscaling.knative.dev/metric: expected concurrency or rps (cpu and "
            "memory need the HPA class, which `quiver up` does not run), got cpu");
  ScalingInputs in;
  in.scale_metric = "memory";
  EXPECT_EQ(Error(in),
            "scaleMetric: expected concurrency or rps (cpu and memory need the HPA class, which "
            "`quiver up` does not run), got memory");
  EXPECT_EQ(AnnotationError("class", "hpa.autoscaling.knative.dev"),
            "annotation autoscaling.knative.dev/class: `quiver up` scales with the KPA only "
            "(kpa.autoscaling.knative.dev); the HPA class needs a cluster (quiver render), got "
            "hpa.autoscaling.knative.dev");
  EXPECT_EQ(AnnotationError("class", "custom.example.com"),
            "annotation autoscaling.knative.dev/class: expected kpa.autoscaling.knative.dev, got "
            "custom.example.com");
  EXPECT_EQ(AnnotationError("metric-aggregation-algorithm", "weighted-exponential"),
            "annotation autoscaling.knative.dev/metric-aggregation-algorithm: expected linear "
            "(the only aggregation `quiver up` implements), got weighted-exponential");
}

TEST(ResolveConfigTest, UnknownDuplicateAndGlobalKeys) {
  EXPECT_THAT(AnnotationError("taget", "10"),
              StartsWith("annotation autoscaling.knative.dev/taget: unknown autoscaling "
                         "annotation (known: target, target-utilization-percentage, metric, "));
  EXPECT_EQ(AnnotationError("scale-to-zero-grace-period", "10s"),
            "annotation autoscaling.knative.dev/scale-to-zero-grace-period: "
            "scale-to-zero-grace-period is a cluster-wide setting in Knative, set on `quiver up`, "
            "not per revision");
  EXPECT_EQ(Error(WithAnnotations({{"min-scale", "1"}, {"minScale", "2"}})),
            "annotations autoscaling.knative.dev/min-scale and autoscaling.knative.dev/minScale "
            "are the same setting; set only one");
}

TEST(ResolveConfigTest, FieldErrors) {
  ScalingInputs in;
  in.min_replicas = -1;
  EXPECT_EQ(Error(in), "minReplicas: expected an integer >= 0, got -1");
  in = {};
  in.max_replicas = -2;
  EXPECT_EQ(Error(in), "maxReplicas: expected an integer >= 0 (0: unbounded), got -2");
  in = {};
  in.scale_target = 0;
  EXPECT_EQ(Error(in), "scaleTarget: expected an integer >= 1, got 0");
  in = {};
  in.container_concurrency = -1;
  EXPECT_EQ(Error(in), "containerConcurrency: expected an integer >= 0 (0: no limit), got -1");
}

TEST(ResolveConfigTest, EveryErrorIsReported) {
  std::string e = Error(WithAnnotations({{"window", "2s"}, {"target", "0"}}));
  EXPECT_THAT(e, HasSubstr("autoscaling.knative.dev/window: expected a duration"));
  EXPECT_THAT(e, HasSubstr("; "));
  EXPECT_THAT(e, HasSubstr("autoscaling.knative.dev/target: expected a number >= 0.01, got 0"));
}

TEST(ResolveConfigTest, BadDefaultsAreReported) {
  KpaConfig defaults;
  defaults.max_scale_up_rate = 1;
  EXPECT_EQ(Error(ScalingInputs{}, defaults),
            "autoscaler default max-scale-up-rate: expected > 1, got 1");
  defaults = {};
  defaults.stable_window = Millis(2'000);
  EXPECT_THAT(Error(ScalingInputs{}, defaults),
              HasSubstr("autoscaler default stable-window: expected whole seconds between 6s "
                        "and 1h, got 2s"));
}

}  // namespace
}  // namespace quiver::autoscale
