// Kubernetes resource quantities ("500m", "1Gi", "2", "1e3") as KServe manifests write them in
// resources.requests/limits and TrainedModel.spec.model.memory. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "spec/resource.h"

namespace quiver::spec {

// The quantity's value in base units (cores, bytes): "500m" → 0.5, "1Gi" → 1073741824,
// "1k" → 1000. Errors name the text and the accepted forms.
StatusOr<double> ParseQuantity(std::string_view text);

// A quantity written as a string or as a bare JSON number (`cpu: 1`), in its canonical text
// form: the string as written, a number printed without quotes ("1", "0.5").
StatusOr<std::string> QuantityText(const Json& value);

}  // namespace quiver::spec
