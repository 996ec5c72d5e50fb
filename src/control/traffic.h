// KServe's canary rollout as a pure function: which revisions of a component get traffic, with
// which percent and tag, and how latestRolledoutRevision / previousRolledoutRevision move
// (promote, canary, rollback). The reconciler calls it on every reconcile; thread-compatible.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace quiver::control {

// One entry of a component's status.traffic (Knative's traffic target).
struct TrafficTarget {
  std::string revision;
  int percent = 0;
  std::string tag;              // "latest", "prev" or empty
  bool latest_revision = false;  // the target that follows the latest ready revision
};

struct RolloutInputs {
  std::string latest_ready;  // newest revision that has been ready; empty: none yet
  std::string latest_created;  // newest revision (ready or not)
  std::string rolled_out;    // status.latestRolledoutRevision before this reconcile
  std::string previous;      // status.previousRolledoutRevision before this reconcile
  std::optional<int> canary_traffic_percent;
  bool tag_routing = false;  // serving.kserve.io/enable-tag-routing: "true"
};

struct RolloutPlan {
  std::vector<TrafficTarget> traffic;  // empty when no revision is ready yet
  std::string rolled_out;
  std::string previous;
};

// KServe's rules (reference: autoscaling-and-traffic.md §4), taken to their fixed point in one
// call (KServe needs a second reconcile to see its own status update):
// - With canaryTrafficPercent P and a rolled-out revision: the latest ready revision gets P%
//   (tag "latest" with tag routing) and, when P < 100, the rolled-out revision 100 − P
//   (tag "prev", always). Otherwise the latest ready revision gets 100%.
// - When the latest ready revision serves 100% and differs from the rolled-out one, it becomes
//   the rolled-out revision and the old one the previous (promote, or a first rollout).
// - Rollback: P < 100 while the latest ready revision is the latest created one and already
//   the rolled-out one, and a previous one is recorded: the previous becomes the rolled-out
//   revision again, so P = 0 sends everything back to it. (A new canary whose revision is not
//   ready yet is not a rollback: its traffic stays on the rolled-out revision.)
RolloutPlan PlanRollout(const RolloutInputs& in);

}  // namespace quiver::control
