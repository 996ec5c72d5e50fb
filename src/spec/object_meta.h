// The Kubernetes metadata every Quiver resource carries, as a typed value read from a validated
// document. Plain value type; thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "spec/resource.h"

namespace quiver::spec {

struct ObjectMeta {
  std::string name;
  std::string namespace_name;  // empty for cluster-scoped kinds
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::string uid;               // set by the store; empty before
  int64_t generation = 0;        // set by the store; 0 before
  std::string resource_version;  // set by the store; empty before
  std::string creation_timestamp;
};

// Reads doc["metadata"] of a document that passed DefaultAndValidate (missing or mistyped fields
// are left empty rather than reported: validation already did).
ObjectMeta ReadObjectMeta(const Json& doc);

}  // namespace quiver::spec
