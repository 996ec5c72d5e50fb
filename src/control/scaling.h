// A component's autoscaler settings as `quiver up` resolves them: its fields (minReplicas,
// maxReplicas, scaleTarget, scaleMetric, containerConcurrency) and the
// `autoscaling.knative.dev/*` annotations (the InferenceService's, overridden by the
// component's). Used by the API to reject bad values at admission (422) and by the reconciler
// to build each revision's autoscaler. Pure; thread-safe.
#pragma once

#include <string>

#include "autoscale/kpa.h"
#include "common/status.h"
#include "spec/inference_service.h"

namespace quiver::control {

struct ComponentScaling {
  autoscale::KpaConfig config;
  std::string key;  // differs whenever any input differs: the autoscaler then starts afresh
};

// Errors are kInvalidArgument prefixed with the component, e.g. "predictor: annotation
// autoscaling.knative.dev/window: expected ...".
// `use_annotations` false: the fields alone (the fallback when an annotation is invalid, so
// that minReplicas and maxReplicas still hold).
StatusOr<ComponentScaling> ScalingOf(const spec::InferenceService& isvc, spec::ComponentType type,
                                     const spec::ComponentSpec& comp,
                                     const autoscale::KpaConfig& defaults,
                                     bool use_annotations = true);

// Every component of the InferenceService; the first error.
Status ValidateScaling(const spec::InferenceService& isvc);

}  // namespace quiver::control
