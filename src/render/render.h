// `quiver render`: KServe resources (InferenceService, InferenceGraph, with the ServingRuntimes
// they select) turned into plain Kubernetes objects that run Quiver's image on a cluster without
// KServe. Pure functions from parsed documents and options to objects and text; thread-compatible.
//
// Two modes, as KServe's deployment modes:
// - kStandard: per component a Deployment (storage initializer as an init container, OIP health
//   probes, resources, node selectors, tolerations passed through), a Service, an autoscaler
//   (HorizontalPodAutoscaler on CPU or memory, or a KEDA ScaledObject when the autoscaler class
//   is keda or scaleMetric is concurrency/rps), and one Gateway API HTTPRoute per resource whose
//   weighted backends carry spec.canary[] traffic. An InferenceGraph becomes a `quiver router`
//   Deployment with its graph in a ConfigMap.
// - kKnative: per component a Knative Service with KServe's autoscaling annotations and traffic
//   targets (canaryTrafficPercent between the latest and the previous rolled-out revision).
// Every object carries app.kubernetes.io/managed-by=quiver and the owner's label
// (serving.kserve.io/inferenceservice=NAME or serving.kserve.io/inferencegraph=NAME), so
// `kubectl delete -l` removes what one resource rendered.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "spec/resource.h"

namespace quiver::render {

using Json = spec::Json;

enum class Mode { kStandard, kKnative };
std::string_view ModeName(Mode mode);  // "standard", "knative"
// "standard" (or KServe's Standard/RawDeployment) and "knative" (Knative/Serverless).
std::optional<Mode> ParseMode(std::string_view name);

struct RenderOptions {
  // Unset: each resource's serving.kserve.io/deploymentMode annotation decides (Standard when
  // absent), as KServe does.
  std::optional<Mode> mode;
  // Quiver's container image: replaces the placeholder image `quiver` of Quiver's runtimes and
  // runs the storage initializer and the graph router. Required.
  std::string image;
  std::string default_namespace = "default";
  // The Gateway API Gateway the HTTPRoutes attach to (KServe's default).
  std::string gateway_name = "kserve-ingress-gateway";
  std::string gateway_namespace = "kserve";
  // Hostnames are {name}-{namespace}.{domain}, KServe's Standard-mode template.
  std::string domain = "example.com";
  // Where KEDA's prometheus triggers query Quiver's metrics.
  std::string prometheus_url = "http://prometheus-operated.monitoring.svc:9090";
  // A Secret whose keys become the storage initializer's environment (AWS_ACCESS_KEY_ID, ...);
  // empty: none.
  std::string storage_secret;
  // Knative mode: Knative Service name → the revision that had 100% before this change, for
  // canaryTrafficPercent. Falls back to the InferenceService's
  // status.components.<component>.latestRolledoutRevision.
  std::map<std::string, std::string> previous_revisions;
};

// Renders every InferenceService and InferenceGraph of `manifests` in input order.
// ServingRuntime and ClusterServingRuntime documents are used for runtime selection (ahead of
// Quiver's built-in quiver-* runtimes) and not output. Documents must not be validated yet:
// each is validated here (spec::DefaultAndValidate) with spec.canary[] taken out first.
// Errors name the document ("file.yaml, document 2 (InferenceService sklearn-iris)") and the
// field; all documents' errors are reported, one per line.
StatusOr<std::vector<Json>> RenderManifests(const std::vector<spec::Manifest>& manifests,
                                            const RenderOptions& options);

// Objects as a YAML stream ("---" between documents), byte-for-byte the same for the same input.
std::string ToYamlStream(const std::vector<Json>& objects);
// Objects as one kind: List (apiVersion v1), indented JSON with a trailing newline.
std::string ToJsonList(const std::vector<Json>& objects);

}  // namespace quiver::render
