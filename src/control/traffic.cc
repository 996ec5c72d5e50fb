#include "control/traffic.h"

namespace quiver::control {

namespace {

std::vector<TrafficTarget> Targets(const RolloutInputs& in, const std::string& rolled_out) {
  const std::string latest_tag = in.tag_routing ? "latest" : "";
  if (in.canary_traffic_percent && !rolled_out.empty()) {
    const int p = *in.canary_traffic_percent;
    std::vector<TrafficTarget> out = {{in.latest_ready, p, latest_tag, true}};
    if (p < 100) out.push_back({rolled_out, 100 - p, "prev", false});
    return out;
  }
  return {{in.latest_ready, 100, latest_tag, true}};
}

}  // namespace

RolloutPlan PlanRollout(const RolloutInputs& in) {
  RolloutPlan plan{{}, in.rolled_out, in.previous};
  if (in.latest_ready.empty()) return plan;
  plan.traffic = Targets(in, plan.rolled_out);
  const int latest_percent = plan.traffic.front().percent;
  if (latest_percent == 100 && in.latest_ready != plan.rolled_out) {
    if (!plan.rolled_out.empty()) plan.previous = plan.rolled_out;
    plan.rolled_out = in.latest_ready;
  } else if (latest_percent < 100 && in.latest_ready == plan.rolled_out &&
             in.latest_ready == in.latest_created && !plan.previous.empty() &&
             plan.previous != plan.rolled_out) {
    plan.rolled_out = plan.previous;
  }
  plan.traffic = Targets(in, plan.rolled_out);
  return plan;
}

}  // namespace quiver::control
