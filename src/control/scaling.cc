#include "control/scaling.h"

#include <nlohmann/json.hpp>

namespace quiver::control {

namespace {

constexpr std::string_view kAutoscalingPrefix = "autoscaling.knative.dev/";

}  // namespace

StatusOr<ComponentScaling> ScalingOf(const spec::InferenceService& isvc, spec::ComponentType type,
                                     const spec::ComponentSpec& comp,
                                     const autoscale::KpaConfig& defaults,
                                     bool use_annotations) {
  autoscale::ScalingInputs in;
  in.min_replicas = comp.min_replicas;
  in.max_replicas = comp.max_replicas;
  in.scale_target = comp.scale_target;
  in.scale_metric = std::string(spec::ScaleMetricName(comp.scale_metric));
  in.container_concurrency = comp.container_concurrency;
  for (const auto* source : {&isvc.metadata.annotations, &comp.annotations}) {
    if (!use_annotations) break;
    for (const auto& [k, v] : *source) {
      if (k.compare(0, kAutoscalingPrefix.size(), kAutoscalingPrefix) == 0) in.annotations[k] = v;
    }
  }
  auto config = autoscale::ResolveConfig(in, defaults);
  if (!config.ok()) {
    return config.status().WithPrefix(std::string(spec::ComponentTypeName(type)));
  }
  nlohmann::json key = {{"min", in.min_replicas},
                        {"max", in.max_replicas.value_or(0)},
                        {"target", in.scale_target.value_or(-1)},
                        {"metric", in.scale_metric},
                        {"cc", in.container_concurrency},
                        {"annotations", in.annotations}};
  return ComponentScaling{std::move(*config), key.dump()};
}

Status ValidateScaling(const spec::InferenceService& isvc) {
  const autoscale::KpaConfig defaults;
  QUIVER_RETURN_IF_ERROR(
      ScalingOf(isvc, spec::ComponentType::kPredictor, isvc.predictor, defaults).status());
  if (isvc.transformer) {
    QUIVER_RETURN_IF_ERROR(
        ScalingOf(isvc, spec::ComponentType::kTransformer, *isvc.transformer, defaults).status());
  }
  if (isvc.explainer) {
    QUIVER_RETURN_IF_ERROR(
        ScalingOf(isvc, spec::ComponentType::kExplainer, *isvc.explainer, defaults).status());
  }
  return Status::Ok();
}

}  // namespace quiver::control
